import NIOConcurrencyHelpers

/// Where I/O workers leave finished commands for their connection. Only the post that finds
/// the mailbox empty wakes the event loop; the loop then takes everything at once, so at high
/// queue depth many completions share one wake-up and one flush.
final class CompletionMailbox: Sendable {
    private let box = NIOLockedValueBox<[(UInt32, CommandExecution.Outcome)]>([])

    /// Returns true when the caller must schedule a drain (the mailbox was empty).
    func post(_ itt: UInt32, _ outcome: CommandExecution.Outcome) -> Bool {
        box.withLockedValue { pending in
            pending.append((itt, outcome))
            return pending.count == 1
        }
    }

    func take() -> [(UInt32, CommandExecution.Outcome)] {
        box.withLockedValue { pending in
            defer { pending.removeAll(keepingCapacity: true) }
            return pending
        }
    }
}
