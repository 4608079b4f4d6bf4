import { CircuitState } from 'cockatiel';

/**
 * A cockatiel circuit breaker's state as kbql reports it (metrics, `/readyz`, drills): `closed` (calls go through),
 * `open` (failing fast), `half-open` (one trial call), `isolated` (held open by hand).
 */
export type CircuitStateName = 'closed' | 'open' | 'half-open' | 'isolated';

export function circuitStateName(state: CircuitState): CircuitStateName {
  switch (state) {
    case CircuitState.Closed:
      return 'closed';
    case CircuitState.Open:
      return 'open';
    case CircuitState.HalfOpen:
      return 'half-open';
    default:
      return 'isolated';
  }
}
