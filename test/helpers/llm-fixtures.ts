import type { Synthesis, SynthesisEvent } from '../../src/ports/answer-synthesizer.port';
import { answerSource as source } from './fixtures';

/** Two sources, a question the first one answers, and a model reply that cites it in both sentences. */
export const SOURCES = [
  source(1, 'Robert Boyle showed in the 1660s that air is necessary for combustion.', 'Combustion'),
  source(2, 'Full-time employees receive 25 vacation days per year.', 'Handbook'),
];
export const QUESTION = 'Who showed that air is necessary for combustion?';
export const REPLY = 'Robert Boyle showed that air is necessary for combustion [1]. He did so in the 1660s [1].';

/** The text deltas of a synthesis stream, in order, and its final synthesis. */
export async function collectSynthesis(events: AsyncIterable<SynthesisEvent>): Promise<{ deltas: string[]; synthesis: Synthesis }> {
  const deltas: string[] = [];
  for await (const event of events) {
    if (event.type === 'delta') deltas.push(event.text);
    else return { deltas, synthesis: event.synthesis };
  }
  throw new Error('stream ended without a done event');
}
