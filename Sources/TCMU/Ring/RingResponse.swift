import SCSIEngine

/// What goes back into a ring slot for one command (`struct tcmu_cmd_entry.rsp`).
public struct RingResponse: Sendable, Equatable {
    /// SAM status byte.
    public var status: UInt8
    /// Sense data (at most `TCMUProtocol.senseBufferSize` bytes are sent).
    public var sense: [UInt8]
    /// Bytes of data-in produced, reported with `TCMU_UFLAG_READ_LEN` when the kernel
    /// supports it (so it returns a residual instead of stale data-area bytes).
    public var readLength: UInt32?

    public init(status: UInt8, sense: [UInt8] = [], readLength: UInt32? = nil) {
        self.status = status
        self.sense = sense
        self.readLength = readLength
    }

    /// SAM-5 TASK ABORTED: for a command a TMR aborted before it started (the kernel has
    /// already answered the initiator; it only needs the slot back).
    public static let taskAborted = RingResponse(status: 0x40)

    /// CHECK CONDITION, HARDWARE ERROR / INTERNAL TARGET FAILURE (04/44/00): the entry
    /// could not be decoded (offsets outside the mapping).
    public static let internalTargetFailure = RingResponse(
        status: 0x02,
        sense: SenseData(key: 0x04, asc: 0x44, ascq: 0x00).bytes())
}
