import CTCMU

/// The TCMU kernel ABI in one place. Source of truth: `<linux/target_core_user.h>`
/// (mailbox version 2); the C shim `_Static_assert`s the layout numbers below against it.
public enum TCMUProtocol {
    /// `TCMU_MAILBOX_VERSION`: the only ABI we speak (v1 is incompatible).
    public static let mailboxVersion: UInt16 = 2
    /// `sizeof(struct tcmu_mailbox)` = `CMDR_OFF` in the kernel.
    public static let mailboxSize = Int(CTCMU_MAILBOX_SIZE)
    /// `TCMU_OP_ALIGN_SIZE`: every ring entry length is a multiple of 8.
    public static let entryAlignment: UInt32 = 8
    /// `TCMU_OP_MASK`: the opcode lives in the low bits of `len_op`.
    public static let opMask: UInt32 = 0x7
    /// `sizeof(struct tcmu_cmd_entry_hdr)`.
    public static let entryHeaderSize = Int(CTCMU_ENTRY_HDR_SIZE)
    /// `sizeof(struct tcmu_cmd_entry)`: a command entry is never shorter (rsp overlays req).
    public static let commandEntrySize = Int(CTCMU_CMD_ENTRY_SIZE)
    /// `offsetof(struct tcmu_cmd_entry, req.iov)`.
    public static let iovecArrayOffset = Int(CTCMU_CMD_ENTRY_IOV_OFFSET)
    /// `sizeof(struct iovec)` on LP64 (32-bit userspace on a 64-bit kernel is unsupported).
    public static let iovecSize = Int(CTCMU_IOVEC_SIZE)
    /// `sizeof(struct tcmu_tmr_entry)` before `cmd_ids[]`.
    public static let tmrEntrySize = Int(CTCMU_TMR_ENTRY_SIZE)
    /// `TCMU_SENSE_BUFFERSIZE`.
    public static let senseBufferSize = Int(CTCMU_SENSE_BUFFER_SIZE)

    /// `enum tcmu_opcode`.
    public enum Opcode: UInt8, Sendable {
        case pad = 0, command = 1, taskManagement = 2
    }

    /// `mailbox.flags` (`TCMU_MAILBOX_FLAG_CAP_*`).
    public struct Capabilities: OptionSet, Sendable, Hashable {
        public let rawValue: UInt16
        public init(rawValue: UInt16) { self.rawValue = rawValue }
        /// Out-of-order completion (4.6).
        public static let outOfOrderCompletion = Capabilities(rawValue: 1 << 0)
        /// `rsp.read_len` honoured with `TCMU_UFLAG_READ_LEN` (4.18).
        public static let readLength = Capabilities(rawValue: 1 << 1)
        /// TMR notification entries (5.9).
        public static let taskManagement = Capabilities(rawValue: 1 << 2)
        /// `TCMU_UFLAG_KEEP_BUF` (5.15); unused by this handler.
        public static let keepBuffer = Capabilities(rawValue: 1 << 3)
    }

    /// `hdr.uflags` (`TCMU_UFLAG_*`).
    public struct UserFlags: OptionSet, Sendable {
        public let rawValue: UInt8
        public init(rawValue: UInt8) { self.rawValue = rawValue }
        public static let unknownOp = UserFlags(rawValue: 0x1)
        public static let readLength = UserFlags(rawValue: 0x2)
        public static let keepBuffer = UserFlags(rawValue: 0x4)
    }

    /// `tmr_type` of `struct tcmu_tmr_entry` (`TCMU_TMR_*`).
    public enum TaskManagementType: UInt8, Sendable {
        case unknown = 0, abortTask = 1, abortTaskSet = 2, clearACA = 3, clearTaskSet = 4
        case lunReset = 5, targetWarmReset = 6, targetColdReset = 7, lunResetPersistentReserve = 128
    }

    /// `enum tcmu_genl_cmd` of the "TCM-USER" generic netlink family.
    public enum NetlinkCommand: Int32, Sendable {
        case unspecified = 0
        case addedDevice = 1, removedDevice = 2, reconfigDevice = 3
        case addedDeviceDone = 4, removedDeviceDone = 5, reconfigDeviceDone = 6
        case setFeatures = 7

        /// The `*_DONE` reply the kernel waits for after an event.
        public var doneReply: NetlinkCommand? {
            switch self {
            case .addedDevice: return .addedDeviceDone
            case .removedDevice: return .removedDeviceDone
            case .reconfigDevice: return .reconfigDeviceDone
            default: return nil
            }
        }
    }

    /// The uio name prefix of TCMU devices: `tcm-user/<hba>/<device>/<subtype>/<cfgstring>`.
    public static let uioNamePrefix = "tcm-user"
    /// Where TCMU backstores live in configfs: `core/user_<hba>/<device>`.
    public static let configfsCore = "/sys/kernel/config/target/core"
}
