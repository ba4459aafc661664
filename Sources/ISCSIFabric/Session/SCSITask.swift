import NIOCore
import SCSIEngine

/// A SCSI command between its SCSI Command PDU and its final status.
struct SCSITask {
    enum State {
        /// Waiting for Data-Out (unsolicited or after R2T).
        case collectingData
        /// Handed to an I/O worker.
        case executing
    }

    let initiatorTaskTag: UInt32
    let lunField: UInt64
    let lun: UInt64
    let attribute: TaskAttribute
    let isRead: Bool
    let isWrite: Bool
    /// Expected data transfer length for the direction of the command.
    let expectedLength: Int
    /// The command as decoded (its CDB; its data is the immediate data).
    let command: SCSICommandPDU
    var state: State
    var write: WriteTransfer?
    /// Where Data-Out lands when it comes in more than one PDU (aligned for O_DIRECT stores).
    var writeBuffer: AlignedBuffer?
    /// Set by ABORT TASK and friends: the result is dropped when the worker returns.
    var aborted = false
}

/// Heap memory aligned for direct I/O, freed with its last reference.
final class AlignedBuffer: @unchecked Sendable {
    // Written by the event loop before the worker runs; read by the worker after.
    let bytes: UnsafeMutableRawBufferPointer

    init(count: Int) {
        bytes = UnsafeMutableRawBufferPointer.allocate(byteCount: max(count, 1), alignment: 4096)
    }

    deinit { bytes.deallocate() }
}
