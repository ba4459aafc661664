import Backstores

/// Where a LU keeps state through a restart or a power loss: persistent reservations for
/// registrants that set APTPL (SPC-4 5.13.5) and mode pages saved with MODE SELECT's SP bit
/// (SPC-4 6.9). The runtime gives one of each to every LU it can; without it, PTPL_C is 0 and
/// SP is refused.
public protocol SavedState: Sendable {
    /// What was saved, nil when nothing is.
    func load() throws(BackstoreError) -> [UInt8]?
    /// Replaces what is saved; durable when it returns, the old content kept on failure.
    func save(_ bytes: [UInt8]) throws(BackstoreError)
    /// Forgets what is saved, durably.
    func remove() throws(BackstoreError)
}

extension DurableFile: SavedState {}
