/// A small piece of state that every server of the same store shares (the persistent
/// reservations of a LUN that several gateways export): versioned, replaced only by
/// compare-and-swap, with a notice to the other servers after each change.
public protocol SharedRecord: AnyObject, Sendable {
    /// The record as last written (version 0 and no bytes: never written).
    func read() throws(BackstoreError) -> SharedRecordValue
    /// Writes `bytes` as version `version + 1` if the record is still at `version`, then tells
    /// the other servers; false when another server changed it first (read again and retry).
    func replace(_ bytes: [UInt8], ifVersion version: UInt64) throws(BackstoreError) -> Bool
    /// Calls `handler` (on any thread, quickly) after another server changed the record, or
    /// when the notices were interrupted and the record should be read again.
    func onChange(_ handler: @escaping @Sendable () -> Void)
    /// Whether notices arrive now; while false a reader cannot know its copy is current.
    var isWatched: Bool { get }
    /// Stops the notices.
    func close()
}

public struct SharedRecordValue: Sendable, Equatable {
    public var bytes: [UInt8]
    public var version: UInt64
    public init(bytes: [UInt8], version: UInt64) {
        self.bytes = bytes
        self.version = version
    }
}
