import NIOCore
import SCSIEngine

/// What the session state machine asks its connection to do, in order.
enum SessionAction: Sendable {
    /// Write this PDU (flushed at the end of the burst).
    case send(TargetPDU)
    /// Run the command in the engine; report with `commandCompleted`.
    case execute(CommandRequest)
    /// Run a task management function in the engine; report with `taskManagementCompleted`.
    case taskManagement(TaskManagementRequest)
    /// Flush what was written, then close the connection.
    case close
}

/// A command whose data is complete, for the engine.
struct CommandRequest: Sendable {
    var initiatorTaskTag: UInt32
    var lun: UInt64
    var attribute: TaskAttribute
    var cdb: CommandDescriptorBlock
    /// Where Data-Out was gathered (solicited data), or nil when it all came as immediate data.
    var writeBuffer: AlignedBuffer?
    /// Immediate data (the receive buffer itself: no copy).
    var immediateData: ByteBuffer
    var writeLength: Int
    var readLength: Int
    /// A pure read with a 16-byte CDB: may be answered from the page cache on the event loop.
    var mayRunWithoutBlocking: Bool
}

/// A task management function the engine carries out (SAM-5 7).
struct TaskManagementRequest: Sendable {
    var initiatorTaskTag: UInt32
    var function: TaskManagementFunction
    var lun: UInt64
}
