import assert from 'node:assert/strict';
import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { describe, it } from 'node:test';
import { DockerfileParser, type Dockerfile } from 'dockerfile-ast';

/**
 * Lints the Dockerfile without a container engine: parsed with `dockerfile-ast` (the parser of the VS Code Docker
 * language server), then checked against the hadolint rules that apply to it (codes in the test names; hadolint
 * itself ships no npm package) and kbql's own requirements.
 */
const ROOT = path.resolve(__dirname, '..', '..', '..');
const TEXT = readFileSync(path.join(ROOT, 'Dockerfile'), 'utf8');

interface Stage {
  name: string | null;
  image: string;
  keywords: { keyword: string; args: string; line: number }[];
}

function stagesOf(dockerfile: Dockerfile): Stage[] {
  const args = Object.fromEntries(dockerfile.getARGs().map((a) => [a.getProperty()?.getName(), a.getProperty()?.getValue() ?? '']));
  const stages: Stage[] = [];
  for (const instruction of dockerfile.getInstructions()) {
    const keyword = instruction.getKeyword();
    const line = instruction.getRange().start.line + 1;
    if (keyword === 'FROM') {
      const from = dockerfile.getFROMs().find((f) => f.getRange().start.line + 1 === line)!;
      const image = from.getImage()!.replace(/\$\{(\w+)\}/g, (_, name: string) => args[name] ?? '');
      stages.push({ name: from.getBuildStage() ?? null, image, keywords: [] });
    } else if (stages.length > 0) {
      stages.at(-1)!.keywords.push({ keyword, args: instruction.getArgumentsContent() ?? '', line });
    }
  }
  return stages;
}

const dockerfile = DockerfileParser.parse(TEXT);
const stages = stagesOf(dockerfile);
const runtime = stages.at(-1)!;
const all = (keyword: string) => stages.flatMap((s) => s.keywords.filter((k) => k.keyword === keyword));

describe('Dockerfile lint', () => {
  it('parses into a multi-stage build whose runtime stage is the last', () => {
    assert.ok(stages.length >= 2, 'multi-stage');
    assert.equal(runtime.name, 'runtime');
    assert.deepEqual(
      dockerfile.getInstructions().filter((i) => i.getKeyword() !== i.getKeyword().toUpperCase()).map((i) => i.getKeyword()),
      [],
      'keywords in upper case',
    );
  });

  it('DL3006/DL3007: every base image has an explicit tag, never latest; the runtime is a maintained even-numbered Node LTS', () => {
    const stageNames = new Set(stages.map((s) => s.name));
    for (const stage of stages) {
      if (stageNames.has(stage.image)) continue; // FROM an earlier stage
      assert.match(stage.image, /^[\w./-]+:[\w.-]+$/, `${stage.image} has a tag`);
      assert.doesNotMatch(stage.image, /:latest$/);
    }
    const major = Number(/^node:(\d+)/.exec(runtime.image)?.[1]);
    assert.ok(major >= 22 && major % 2 === 0, `node ${major}: an LTS line still maintained (Node 20 ended in April 2026)`);
    const engines = JSON.parse(readFileSync(path.join(ROOT, 'package.json'), 'utf8')).engines.node as string;
    assert.ok(major >= Number(/>=\s*(\d+)/.exec(engines)?.[1]), `satisfies engines ${engines}`);
  });

  it('DL3025: CMD and HEALTHCHECK use the exec (JSON) form, so node receives SIGTERM itself', () => {
    const cmd = dockerfile.getCMDs();
    assert.equal(cmd.length, 1);
    assert.deepEqual(cmd[0]!.getJSONStrings().map((s) => s.getJSONValue()), ['node', 'dist/src/main.js']);
    assert.equal(dockerfile.getENTRYPOINTs().length, 0, 'no wrapper entrypoint');
    const health = all('HEALTHCHECK');
    assert.equal(health.length, 1);
    assert.match(health[0]!.args, /CMD \["node", "-e", ".*\/healthz/);
    assert.ok(existsSync(path.join(ROOT, 'src', 'main.ts')));
    assert.match(readFileSync(path.join(ROOT, 'src', 'main.ts'), 'utf8'), /process\.on\('SIGTERM'/);
  });

  it('DL3002: the runtime runs as the unprivileged node user, with /data as its only writable volume', () => {
    const users = runtime.keywords.filter((k) => k.keyword === 'USER');
    assert.equal(users.at(-1)?.args, 'node');
    const volume = runtime.keywords.find((k) => k.keyword === 'VOLUME');
    assert.equal(volume?.args, '["/data"]');
    assert.match(runtime.keywords.filter((k) => k.keyword === 'ENV').map((k) => k.args).join(' '), /KBQL_DATA_DIR=\/data/);
    assert.ok(runtime.keywords.some((k) => k.keyword === 'RUN' && /chown node:node \/data/.test(k.args)));
  });

  it('DL3008-DL3015/DL3009: apt installs skip recommends and remove their lists in the same layer; none in the runtime', () => {
    for (const run of all('RUN').filter((r) => /apt-get install/.test(r.args))) {
      assert.match(run.args, /--no-install-recommends/, `line ${run.line}`);
      assert.match(run.args, /-y\b/, `line ${run.line}`);
      assert.match(run.args, /rm -rf \/var\/lib\/apt\/lists/, `line ${run.line}`);
    }
    assert.ok(!runtime.keywords.some((k) => k.keyword === 'RUN' && /apt-get|g\+\+|python3/.test(k.args)), 'no compiler in the runtime');
  });

  it('DL3020/DL3022/DL3000: COPY not ADD, COPY --from names an earlier stage, WORKDIR is absolute', () => {
    assert.equal(all('ADD').length, 0);
    const names = stages.map((s) => s.name);
    for (const copy of dockerfile.getCOPYs()) {
      const from = copy.getFlags().find((f) => f.getName() === 'from')?.getValue();
      if (from) assert.ok(names.includes(from), `COPY --from=${from}`);
    }
    for (const workdir of all('WORKDIR')) assert.match(workdir.args, /^\//);
  });

  it('production dependencies come from npm ci --omit=dev and the sources copied exist and are not dockerignored', () => {
    assert.ok(all('RUN').some((r) => /npm ci --omit=dev/.test(r.args)));
    assert.ok(!all('RUN').some((r) => /npm install\b/.test(r.args)), 'npm ci, never npm install');
    const ignore = readFileSync(path.join(ROOT, '.dockerignore'), 'utf8').split('\n').map((l) => l.trim()).filter((l) => l && !l.startsWith('#'));
    for (const must of ['node_modules', '.env', '.git', 'dist']) assert.ok(ignore.includes(must), `.dockerignore has ${must}`);
    const ignored = (file: string) => {
      let out = false;
      for (const rule of ignore) {
        const negate = rule.startsWith('!');
        const pattern = negate ? rule.slice(1) : rule;
        const re = new RegExp(`^${pattern.replace(/[.+^$()|[\]\\]/g, '\\$&').replace(/\*\*\//g, '(?:.*/)?').replace(/\*/g, '[^/]*')}(?:/.*)?$`);
        if (re.test(file)) out = !negate;
      }
      return out;
    };
    for (const copy of dockerfile.getCOPYs()) {
      if (copy.getFlags().some((f) => f.getName() === 'from')) continue;
      const sources = copy.getArguments().slice(0, -1).map((a) => a.getValue());
      for (const source of sources) {
        assert.ok(existsSync(path.join(ROOT, source)), `${source} exists`);
        assert.equal(ignored(source), false, `${source} is not excluded by .dockerignore`);
      }
    }
    assert.equal(ignored('test/unit/x.ts'), true, 'the ignore matcher works');
  });

  it('no secret is baked into the image', () => {
    const env = all('ENV').map((k) => k.args).join(' ') + all('ARG').map((k) => k.args).join(' ');
    assert.doesNotMatch(env, /SECRET|PASSWORD|API_KEY|TOKEN/i);
  });
});
