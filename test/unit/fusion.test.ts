import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { isAppError } from '../../src/errors';
import { relativeScoreFusion } from '../../src/retrieval/fusion';

const close = (actual: number, expected: number): void => assert.ok(Math.abs(actual - expected) < 1e-12, `${actual} ≈ ${expected}`);

describe('relativeScoreFusion', () => {
  it('min-max normalises each side over its own candidates and weights them by alpha', () => {
    const fused = relativeScoreFusion(
      [
        { id: 'a', score: 0.9 },
        { id: 'b', score: 0.5 },
        { id: 'c', score: 0.7 },
      ],
      [
        { id: 'b', score: 12 },
        { id: 'd', score: 2 },
        { id: 'c', score: 7 },
      ],
      0.25,
    );
    const byId = new Map(fused.map((h) => [h.id, h]));
    // vector: a=1, b=0, c=0.5; keyword: b=1, d=0, c=0.5
    close(byId.get('a')!.score, 0.25 * 1);
    close(byId.get('b')!.score, 0.75 * 1);
    close(byId.get('c')!.score, 0.25 * 0.5 + 0.75 * 0.5);
    close(byId.get('d')!.score, 0);
    assert.deepEqual(
      fused.map((h) => h.id),
      ['b', 'c', 'a', 'd'],
    );
  });

  it('carries each side raw score, null for the side that missed the chunk', () => {
    const fused = relativeScoreFusion(
      [
        { id: 'v', score: 0.3 },
        { id: 'both', score: 0.8 },
      ],
      [
        { id: 'k', score: 4 },
        { id: 'both', score: 2 },
      ],
      0.5,
    );
    const byId = new Map(fused.map((h) => [h.id, h]));
    assert.deepEqual({ v: byId.get('v')!.vectorScore, vk: byId.get('v')!.keywordScore }, { v: 0.3, vk: null });
    assert.deepEqual({ v: byId.get('k')!.vectorScore, k: byId.get('k')!.keywordScore }, { v: null, k: 4 });
    assert.deepEqual({ v: byId.get('both')!.vectorScore, k: byId.get('both')!.keywordScore }, { v: 0.8, k: 2 });
  });

  it('normalises a list whose scores are all equal to 1 (a single candidate too)', () => {
    const fused = relativeScoreFusion(
      [{ id: 'x', score: 0.42 }],
      [
        { id: 'y', score: 3 },
        { id: 'z', score: 3 },
      ],
      0.6,
    );
    const byId = new Map(fused.map((h) => [h.id, h.score]));
    close(byId.get('x')!, 0.6);
    close(byId.get('y')!, 0.4);
    close(byId.get('z')!, 0.4);
  });

  it('alpha = 1 keeps the vector order, alpha = 0 the keyword order', () => {
    const vector = [
      { id: 'a', score: 0.1 },
      { id: 'b', score: 0.9 },
      { id: 'c', score: 0.5 },
    ];
    const keyword = [
      { id: 'a', score: 9 },
      { id: 'b', score: 1 },
      { id: 'c', score: 5 },
    ];
    assert.deepEqual(
      relativeScoreFusion(vector, keyword, 1).map((h) => h.id),
      ['b', 'c', 'a'],
    );
    assert.deepEqual(
      relativeScoreFusion(vector, keyword, 0).map((h) => h.id),
      ['a', 'c', 'b'],
    );
  });

  it('breaks score ties by chunk id so pages are stable', () => {
    const fused = relativeScoreFusion(
      [
        { id: 'm', score: 0.5 },
        { id: 'b', score: 0.5 },
      ],
      [
        { id: 'z', score: 1 },
        { id: 'a', score: 1 },
      ],
      0.5,
    );
    assert.deepEqual(
      fused.map((h) => [h.id, h.score]),
      [
        ['a', 0.5],
        ['b', 0.5],
        ['m', 0.5],
        ['z', 0.5],
      ],
    );
  });

  it('handles empty sides and does not modify its inputs', () => {
    assert.deepEqual(relativeScoreFusion([], [], 0.5), []);
    const keyword = Object.freeze([Object.freeze({ id: 'k', score: 2 }), Object.freeze({ id: 'j', score: 1 })]);
    const fused = relativeScoreFusion([], keyword, 0.5);
    assert.deepEqual(
      fused.map((h) => [h.id, h.score, h.vectorScore]),
      [
        ['k', 0.5, null],
        ['j', 0, null],
      ],
    );
  });

  it('keeps the best score of an id repeated within one list', () => {
    const fused = relativeScoreFusion(
      [
        { id: 'a', score: 0.2 },
        { id: 'a', score: 0.8 },
        { id: 'b', score: 0.4 },
      ],
      [],
      1,
    );
    assert.deepEqual(
      fused.map((h) => [h.id, h.vectorScore]),
      [
        ['a', 0.8],
        ['b', 0.4],
      ],
    );
  });

  it('rejects alpha outside [0, 1] with BAD_USER_INPUT', () => {
    for (const alpha of [-0.1, 1.5, Number.NaN]) {
      assert.throws(
        () => relativeScoreFusion([], [], alpha),
        (e: unknown) => isAppError(e) && e.code === 'BAD_USER_INPUT',
      );
    }
  });
});
