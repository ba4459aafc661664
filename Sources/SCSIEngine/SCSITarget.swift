import Backstores

/// A SCSI target device: the set of logical units one target name exports, the nexuses
/// that talk to it, and the command dispatcher. Thread-safe; `execute` is blocking
/// (it does the backstore I/O) and is called from I/O worker threads.
public final class SCSITarget: Sendable {
    /// The target name (IQN); used for the target port identifiers in VPD 0x83.
    public let name: String

    public init(name: String) {
        self.name = name
    }

    /// Adds a logical unit at `lun`. Other nexuses see REPORTED LUNS DATA HAS CHANGED.
    public func addLogicalUnit(_ lun: UInt64, store: any BlockStore, configuration: LogicalUnitConfiguration) throws {
        fatalError("SCSIEngine: not implemented yet")
    }

    /// Removes a logical unit; returns its store so the caller can close it.
    @discardableResult
    public func removeLogicalUnit(_ lun: UInt64) -> (any BlockStore)? {
        fatalError("SCSIEngine: not implemented yet")
    }

    /// LUNs in ascending order.
    public var logicalUnitNumbers: [UInt64] {
        fatalError("SCSIEngine: not implemented yet")
    }

    /// Registers a nexus at login. The same identity gets the same ID (session reinstatement).
    public func openNexus(_ nexus: ITNexus) -> NexusID {
        fatalError("SCSIEngine: not implemented yet")
    }

    /// The nexus is gone (logout, connection loss): RESERVE(6/10) reservations it holds are
    /// released; persistent reservations stay.
    public func closeNexus(_ id: NexusID) {
        fatalError("SCSIEngine: not implemented yet")
    }

    /// Runs one command to completion. `dataOut` holds the bytes the initiator sent (may be
    /// shorter or longer than the CDB asks for); `dataIn` is where data-in goes (its capacity
    /// is the fabric's expected transfer length).
    public func execute(cdb: UnsafeRawBufferPointer, lun: UInt64, nexus: NexusID,
                        attribute: TaskAttribute, dataOut: IOVectors, dataIn: IOVectors) -> SCSICommandResult {
        fatalError("SCSIEngine: not implemented yet")
    }

    /// Engine side of a task management function (resets, unit attentions).
    public func taskManagement(_ function: TaskManagementFunction, lun: UInt64, nexus: NexusID) -> TaskManagementResponse {
        fatalError("SCSIEngine: not implemented yet")
    }

    /// Signals that the store's capacity changed (after `refreshSize`): CAPACITY DATA HAS CHANGED.
    public func capacityChanged(lun: UInt64) {
        fatalError("SCSIEngine: not implemented yet")
    }
}
