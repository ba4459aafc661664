import Backstores

// The contract between the fabrics (iSCSI, TCMU) and the SCSI engine.
// The engine sees an I_T nexus, a CDB and memory the caller owns; nothing of the wire.

/// The identity of an I_T nexus (SAM-5 4.7): initiator port + target port.
public struct ITNexus: Hashable, Sendable {
    /// The initiator's name (iSCSI: its iSCSI name).
    public var initiatorName: String
    /// Which port of that initiator, as the transport numbers them (iSCSI: the 48-bit ISID);
    /// 0 where the transport has one port per initiator.
    public var initiatorPortID: UInt64
    /// The target's name the nexus belongs to.
    public var targetName: String
    /// The target port: its port group and relative target port in VPD 0x83 (iSCSI: the
    /// target portal group tag).
    public var targetPortalGroupTag: UInt16

    public init(initiatorName: String, initiatorPortID: UInt64, targetName: String, targetPortalGroupTag: UInt16 = 1) {
        self.initiatorName = initiatorName
        self.initiatorPortID = initiatorPortID
        self.targetName = targetName
        self.targetPortalGroupTag = targetPortalGroupTag
    }
}

/// Handle for a registered nexus; cheap to pass on every command.
public struct NexusID: Hashable, Sendable {
    public let rawValue: UInt32
    public init(rawValue: UInt32) { self.rawValue = rawValue }
}

/// A scatter/gather list of caller-owned memory. The common case is one segment,
/// which needs no array allocation.
public struct IOVectors {
    public var first: UnsafeMutableRawBufferPointer
    public var more: [UnsafeMutableRawBufferPointer]

    public init(_ first: UnsafeMutableRawBufferPointer, more: [UnsafeMutableRawBufferPointer] = []) {
        self.first = first
        self.more = more
    }

    public static var empty: IOVectors { IOVectors(UnsafeMutableRawBufferPointer(start: nil, count: 0)) }

    /// Total bytes across all segments.
    public var count: Int {
        var n = first.count
        for s in more { n += s.count }
        return n
    }
}

/// SAM-5 task attributes.
public enum TaskAttribute: UInt8, Sendable {
    case untagged = 0, simple = 1, ordered = 2, headOfQueue = 3, aca = 4
}

/// SAM-5 status codes.
public struct SCSIStatus: RawRepresentable, Hashable, Sendable, CustomStringConvertible {
    public let rawValue: UInt8
    public init(rawValue: UInt8) { self.rawValue = rawValue }
    public static let good = SCSIStatus(rawValue: 0x00)
    public static let checkCondition = SCSIStatus(rawValue: 0x02)
    public static let conditionMet = SCSIStatus(rawValue: 0x04)
    public static let busy = SCSIStatus(rawValue: 0x08)
    public static let reservationConflict = SCSIStatus(rawValue: 0x18)
    public static let taskSetFull = SCSIStatus(rawValue: 0x28)
    public static let acaActive = SCSIStatus(rawValue: 0x30)
    public static let taskAborted = SCSIStatus(rawValue: 0x40)
    public var description: String { "0x" + hex(UInt64(rawValue), digits: 2) }
}

/// What a command produced.
public struct SCSICommandResult: Sendable {
    public var status: SCSIStatus
    /// Fixed-format sense data (SPC-4 4.5.3), empty unless status is CHECK CONDITION.
    public var sense: [UInt8]
    /// Bytes written into the data-in buffer (never more than its capacity).
    public var dataInCount: Int
    /// Bytes the command itself wanted to move in its data phase (data-in or data-out),
    /// from the CDB (allocation length / transfer length). The fabric compares it with
    /// its expected data transfer length to compute residuals.
    public var transferLength: Int

    public init(status: SCSIStatus, sense: [UInt8] = [], dataInCount: Int = 0, transferLength: Int = 0) {
        self.status = status
        self.sense = sense
        self.dataInCount = dataInCount
        self.transferLength = transferLength
    }
}

/// SAM-5 task management functions the engine acts on (aborting queued tasks is the fabric's job).
public enum TaskManagementFunction: Sendable {
    case abortTask, abortTaskSet, clearTaskSet, clearACA, logicalUnitReset, targetWarmReset, targetColdReset
}

/// SAM-5 task management service responses.
public enum TaskManagementResponse: Sendable {
    case functionComplete, functionRejected, lunDoesNotExist, functionNotSupported
}

/// Settings of one logical unit that the engine owns (not the store's).
public struct LogicalUnitConfiguration: Sendable {
    /// Unit serial number (VPD 0x80); stable across restarts.
    public var serialNumber: String
    /// 64-bit value from which the NAA-6 identifier is built (stable per LUN).
    public var uniqueID: UInt64
    public var vendor: String
    public var product: String
    public var revision: String
    /// Export read-only even if the store is writable (DATA PROTECT on writes).
    public var readOnly: Bool
    /// Initial WCE bit of the caching mode page; false = write-through (durable before GOOD).
    public var writeCacheEnabled: Bool
    /// Where the LU counts its commands; nil: the LU makes its own. Passing one keeps the
    /// counters across a LU being re-added (target restart).
    public var statistics: LUNStatisticsRecorder? = nil
    /// Where persistent reservations are kept through a restart for registrants that set
    /// APTPL; nil: APTPL is not offered (PTPL_C 0). Not used for a store whose reservations
    /// every gateway shares (those live with the store).
    public var reservationPersistence: (any SavedState)? = nil
    /// Where mode pages saved with MODE SELECT SP=1 are kept (they are the LU's values at every
    /// start and after every reset); nil: SP is refused and pages report PS 0.
    public var savedModePages: (any SavedState)? = nil

    public init(serialNumber: String, uniqueID: UInt64, vendor: String = "SWIFTTGT",
                product: String = "SwiftTarget LU", revision: String = "0001",
                readOnly: Bool = false, writeCacheEnabled: Bool = true) {
        self.serialNumber = serialNumber
        self.uniqueID = uniqueID
        self.vendor = vendor
        self.product = product
        self.revision = revision
        self.readOnly = readOnly
        self.writeCacheEnabled = writeCacheEnabled
    }
}

@inline(__always)
func hex(_ value: UInt64, digits: Int) -> String {
    let s = String(value, radix: 16)
    return s.count >= digits ? s : String(repeating: "0", count: digits - s.count) + s
}
