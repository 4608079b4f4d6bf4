/** The label value every name that is not admitted is folded into. */
export const OTHER_LABEL = '__other__';

const NAME = /^[_A-Za-z][_0-9A-Za-z]{0,63}$/;

/**
 * Keeps a label's value set bounded: names in `allow` always pass; other well-formed names (GraphQL names, at most
 * 64 characters) are admitted first come, first served up to `max`; everything else — anonymous, malformed, or past
 * the cap — becomes {@link OTHER_LABEL}. At most `allow.length + max + 1` distinct values ever reach a metric.
 */
export class LabelGuard {
  private readonly admitted = new Set<string>();

  constructor(
    private readonly max: number,
    private readonly allow: ReadonlySet<string> = new Set(),
  ) {}

  value(name: string | null | undefined): string {
    if (!name) return OTHER_LABEL;
    if (this.allow.has(name) || this.admitted.has(name)) return name;
    if (!NAME.test(name) || this.admitted.size >= this.max) return OTHER_LABEL;
    this.admitted.add(name);
    return name;
  }
}
