import assert from 'node:assert/strict';
import { readFileSync, statSync } from 'node:fs';
import path from 'node:path';
import { describe, it } from 'node:test';
import {
  ROOT,
  docFiles,
  fencedBlocks,
  githubSlug,
  headingAnchors,
  linkProblems,
  linkTargets,
  outsidePathProblems,
  readDoc,
  summaryProblems,
  unmarkedBlockProblems,
} from '../helpers/docs';

/** README.md is the front page: at most 15 KiB. */
const README_MAX_BYTES = 15_360;
/** "The first screen": what a newcomer reads before scrolling. */
const FIRST_SCREEN_LINES = 60;

const README = readDoc('README.md');
const pkg = JSON.parse(readFileSync(path.join(ROOT, 'package.json'), 'utf8')) as {
  engines: { node: string };
  scripts: Record<string, string>;
};

describe('README.md and docs/', () => {
  it(`README.md is at most ${README_MAX_BYTES} bytes`, () => {
    const bytes = statSync(path.join(ROOT, 'README.md')).size;
    assert.ok(bytes <= README_MAX_BYTES, `README.md is ${bytes} bytes; move detail into docs/`);
  });

  it('every relative link resolves to a file of the repository, and every #anchor to a heading of its page', () => {
    const problems = docFiles().flatMap((file) => linkProblems(file, readDoc(file)));
    assert.deepEqual(problems, []);
  });

  it('no link or path leaves the repository', () => {
    const problems = docFiles().flatMap((file) => outsidePathProblems(file, readDoc(file)));
    assert.deepEqual(problems, []);
  });

  it('the first screen of README names the start and test commands, Sandbox, the CLI and the configuration', () => {
    const screen = README.split('\n').slice(0, FIRST_SCREEN_LINES).join('\n');
    for (const words of ['npm ci && npm start', 'npm test', 'Sandbox', 'CLI'])
      assert.ok(screen.includes(words), `the first ${FIRST_SCREEN_LINES} lines of README do not say ${words}`);
    assert.match(screen, /configuration/i);
  });

  it('the two commands are true: package.json has the scripts, .ci/run runs them, and README states the engines minimum', () => {
    const two = fencedBlocks(README).find((b) => b.code.includes('npm start'));
    assert.ok(two, 'README has a block with npm start');
    assert.deepEqual(
      two.code
        .split('\n')
        .filter(Boolean)
        .map((l) => l.replace(/\s*#.*$/, '')),
      ['npm ci && npm start', 'npm test'],
    );
    assert.ok(pkg.scripts['start'] && pkg.scripts['test'], 'package.json has start and test scripts');
    const ci = readFileSync(path.join(ROOT, '.ci', 'run'), 'utf8').split('\n');
    assert.ok(
      ci.some((l) => /^npm ci\b/.test(l)),
      '.ci/run runs npm ci',
    );
    assert.ok(ci.includes('npm test'), '.ci/run runs npm test');
    const minimum = /^>=\s*(\d+\.\d+)/.exec(pkg.engines.node)?.[1];
    assert.ok(minimum, `engines.node is a minimum: ${pkg.engines.node}`);
    assert.ok(README.includes(`Node ${minimum} or newer`), `README says "Node ${minimum} or newer"`);
    for (const file of docFiles()) {
      for (const stated of readDoc(file).matchAll(/Node (\d+\.\d+)\+|Node (\d+\.\d+) or newer/g)) {
        assert.equal(stated[1] ?? stated[2], minimum, `${file} states another minimum Node: ${stated[0]}`);
      }
    }
  });

  it('each page of docs/ starts with its title and a one-line summary', () => {
    const problems = docFiles()
      .filter((f) => f.startsWith('docs/'))
      .flatMap((file) => summaryProblems(file, readDoc(file)));
    assert.deepEqual(problems, []);
  });

  it('docs/README.md links every page of docs/, and README links docs/README.md', () => {
    const index = new Set(linkTargets(readDoc('docs/README.md')).map((t) => t.split('#')[0]));
    const missing = docFiles().filter((f) => f.startsWith('docs/') && f !== 'docs/README.md' && !index.has(f.slice('docs/'.length)));
    assert.deepEqual(missing, []);
    assert.ok(
      linkTargets(README).some((t) => t.startsWith('docs/')),
      'README links into docs/',
    );
  });

  it('every bash, sh, graphql, js or ts block is marked runnable (and run by a test) or not-run (with a reason)', () => {
    const problems = docFiles().flatMap((file) => unmarkedBlockProblems(file, readDoc(file)));
    assert.deepEqual(problems, []);
    const names = docFiles().flatMap((file) => fencedBlocks(readDoc(file)).flatMap((b) => (b.runnable ? [b.runnable] : [])));
    assert.equal(new Set(names).size, names.length, `runnable names are unique: ${names.join(', ')}`);
  });
});

describe('the documentation checks catch what they are for', () => {
  const pages: Record<string, string> = {
    'README.md': '# kbql\n\n## A first query\n\nSee [api](docs/api.md#the-three-families).\n',
    'docs/api.md': '# The API\n\nEvery operation.\n\n## The three families\n\n## `search` (query)\n\n## Tips\n\n## Tips\n',
  };
  const read = (rel: string) => pages[rel] ?? null;

  it('a missing file, a missing anchor and a link out of the repository', () => {
    const text =
      'A [ok](docs/api.md#the-three-families), [gone](docs/gone.md), [bad](docs/api.md#nope), [out](../shared/STACK.md), [self](#nowhere), [here](#a-first-query), [web](https://example.com).\n\n## A first query\n';
    assert.deepEqual(linkProblems('README.md', text, read), [
      'README.md: link docs/gone.md → docs/gone.md does not exist',
      'README.md: link docs/api.md#nope → no heading #nope in docs/api.md',
      'README.md: link ../shared/STACK.md leaves the repository',
      'README.md: link #nowhere → no heading #nowhere in README.md',
    ]);
    assert.deepEqual(linkProblems('README.md', pages['README.md']!, read), []);
  });

  it('links inside code are not links', () => {
    assert.deepEqual(linkTargets('`[x](nowhere.md)` and\n```md\n[y](nowhere.md)\n```\n[z](here.md)\n'), ['here.md']);
  });

  it("GitHub's anchors: code and punctuation dropped, duplicates numbered", () => {
    assert.deepEqual([...headingAnchors(pages['docs/api.md']!)], ['the-api', 'the-three-families', 'search-query', 'tips', 'tips-1']);
    assert.equal(
      githubSlug('Answer quality (`bench/answers-squad2.bench.ts`), offline defaults'),
      'answer-quality-benchanswers-squad2benchts-offline-defaults',
    );
    assert.equal(githubSlug('Uploading files: `POST /v1/uploads`'), 'uploading-files-post-v1uploads');
  });

  it('paths out of the repository, in prose or in code', () => {
    assert.deepEqual(outsidePathProblems('README.md', 'reads `../shared/data/scifact`; see bench/run-all.ts'), [
      'README.md: path ../shared/data/scifact leaves the repository',
      'README.md: names shared/data, which a clone does not have',
    ]);
    assert.deepEqual(outsidePathProblems('docs/benchmarks.md', 'see ../../STACK.md and ../bench/run-all.ts'), [
      'docs/benchmarks.md: path ../../STACK.md leaves the repository',
    ]);
    assert.deepEqual(outsidePathProblems('docs/api.md', 'see [it](../schema/schema.graphql)'), []);
  });

  it('an unmarked runnable-language block; a marked or text block passes', () => {
    const text =
      '<!-- runnable: a -->\n```bash\necho a\n```\n\n<!-- not-run: needs docker -->\n```sh\ndocker run x\n```\n\n```\nplain\n```\n\n```js\nconsole.log(1)\n```\n';
    assert.deepEqual(unmarkedBlockProblems('docs/x.md', text), [
      'docs/x.md:15: a js block without <!-- runnable: name --> or <!-- not-run: reason --> before it',
    ]);
  });

  it('a page without its one-line summary', () => {
    assert.deepEqual(summaryProblems('docs/a.md', '# A\n\nOne line.\n\nMore.\n'), []);
    assert.deepEqual(summaryProblems('docs/a.md', '# A\n'), []);
    assert.equal(summaryProblems('docs/a.md', '# A\n\nA summary that wraps\nonto a second line.\n').length, 1);
    assert.equal(summaryProblems('docs/a.md', '# A\n\n## Straight to a section\n').length, 1);
    assert.equal(summaryProblems('docs/a.md', 'No title\n').length, 1);
  });
});
