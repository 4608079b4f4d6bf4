import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { splitSentences } from '../../src/retrieval/tokenize';

describe('sentence splitting', () => {
  it('ends a sentence after a footnote marker that follows its full stop', () => {
    const text = 'Latin Rhenus.[note 3] The spelling with Rh- is Greek. Passengers have O 2.[h] People climb.';
    assert.deepEqual(
      splitSentences(text).map((s) => s.text),
      ['Latin Rhenus.[note 3]', 'The spelling with Rh- is Greek.', 'Passengers have O 2.[h]', 'People climb.'],
    );
  });

  it('still keeps abbreviations and initials inside a sentence', () => {
    assert.deepEqual(
      splitSentences('See e.g. Table 2 by J. Smith. Then stop.').map((s) => s.text),
      ['See e.g. Table 2 by J. Smith.', 'Then stop.'],
    );
  });
});
