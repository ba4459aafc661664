import NIOConcurrencyHelpers

/// Where I/O workers leave finished commands for their connection. Only the post that finds
/// the mailbox empty wakes the event loop; the loop then takes everything at once, so at high
/// queue depth many completions share one wake-up and one flush.
final class CompletionMailbox: Sendable {
    struct Completion: Sendable {
        var itt: UInt32
        var outcome: CommandExecution.Outcome
        /// The command's expected lengths (for the session's byte counters).
        var readLength: Int
        var writeLength: Int
    }

    private let box = NIOLockedValueBox<[Completion]>([])

    /// Returns true when the caller must schedule a drain (the mailbox was empty).
    func post(_ completion: Completion) -> Bool {
        box.withLockedValue { pending in
            pending.append(completion)
            return pending.count == 1
        }
    }

    /// Swaps everything posted so far into `taken` (emptied first): the two arrays trade
    /// storage back and forth, so neither allocates once both have grown.
    func take(into taken: inout [Completion]) {
        taken.removeAll(keepingCapacity: true)
        box.withLockedValue { pending in swap(&pending, &taken) }
    }
}
