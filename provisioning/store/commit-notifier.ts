/**
 * Tracks whether the current write appended events and tells listeners once it has committed
 * (RegistryStore.onEventsCommitted). Shared by both store implementations.
 */
export class CommitNotifier {
  #pending = false
  readonly #listeners = new Set<() => void>()

  subscribe(listener: () => void): () => void {
    this.#listeners.add(listener)
    return () => this.#listeners.delete(listener)
  }

  /** an event was appended; `committed` when it was a lone write outside any transaction */
  eventAppended(committed: boolean): void {
    this.#pending = true
    if (committed) this.committed()
  }

  committed(): void {
    if (!this.#pending) return
    this.#pending = false
    for (const l of this.#listeners) l()
  }

  rolledBack(): void {
    this.#pending = false
  }
}
