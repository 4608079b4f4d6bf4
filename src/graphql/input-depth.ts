import { AppError } from '../errors';

/**
 * Deepest bracket nesting (`{`, `[`, `(`) of an operation's text and deepest nesting of its variables: far above any
 * real operation (selections stop at KBQL_MAX_QUERY_DEPTH, introspection at 20; filters are a few levels) and far
 * below what overflows the stack of graphql-js's recursive parser and input coercion.
 */
export const MAX_INPUT_NESTING = 64;

/**
 * BAD_USER_INPUT when the operation text or the variables nest deeper than `max`, else null. Both walks are
 * iterative and stop at the first level past `max`, so a hostile 100,000-level input costs no stack and little time.
 * Run before parsing and before variables are coerced (both recurse per level).
 */
export function checkInputNesting(query: unknown, variables: unknown, max = MAX_INPUT_NESTING): AppError | null {
  if (typeof query === 'string' && textNestingExceeds(query, max)) {
    return new AppError(
      'BAD_USER_INPUT',
      `The operation nests brackets more than ${max} levels deep (deeply nested input values such as filters); flatten them.`,
      { maxNesting: max },
    );
  }
  if (valueNestingExceeds(variables, max)) {
    return new AppError('BAD_USER_INPUT', `The variables nest more than ${max} levels deep; flatten them.`, { maxNesting: max });
  }
  return null;
}

/** Whether GraphQL source text nests `{ [ (` deeper than `max`, outside strings, block strings and comments. */
export function textNestingExceeds(text: string, max: number): boolean {
  let depth = 0;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (c === 0x7b || c === 0x5b || c === 0x28) {
      if (++depth > max) return true;
    } else if (c === 0x7d || c === 0x5d || c === 0x29) {
      if (depth > 0) depth--;
    } else if (c === 0x23) {
      // # comment to the end of the line
      while (i < text.length && text.charCodeAt(i) !== 0x0a && text.charCodeAt(i) !== 0x0d) i++;
    } else if (c === 0x22) {
      if (text.startsWith('"""', i)) {
        const end = blockStringEnd(text, i + 3);
        if (end < 0) return false; // unterminated: the parser reports it
        i = end + 2;
      } else {
        i++;
        while (i < text.length && text.charCodeAt(i) !== 0x22 && text.charCodeAt(i) !== 0x0a) i += text.charCodeAt(i) === 0x5c ? 2 : 1;
      }
    }
  }
  return false;
}

function blockStringEnd(text: string, from: number): number {
  for (let i = from; i < text.length; i++) {
    if (text.charCodeAt(i) === 0x5c && text.startsWith('\\"""', i)) i += 3;
    else if (text.startsWith('"""', i)) return i;
  }
  return -1;
}

/** Whether a JSON-like value nests objects and arrays deeper than `max` (the value itself is level 0). */
export function valueNestingExceeds(value: unknown, max: number): boolean {
  const stack: [unknown, number][] = [[value, 0]];
  while (stack.length > 0) {
    const [current, depth] = stack.pop()!;
    if (current === null || typeof current !== 'object') continue;
    if (depth + 1 > max) return true;
    for (const inner of Array.isArray(current) ? current : Object.values(current)) {
      if (inner !== null && typeof inner === 'object') stack.push([inner, depth + 1]);
    }
  }
  return false;
}
