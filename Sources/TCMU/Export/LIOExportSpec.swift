/// What to create in LIO's configfs so the kernel exports TCMU devices served by this
/// handler: `user_<hba>` backstores and an iSCSI target with portal group, LUNs, portals,
/// ACLs and CHAP. A plain value; `ConfigfsPlan` turns it into configfs steps.
public struct LIOExportSpec: Sendable, Equatable {
    /// A TCMU backstore `core/user_<hba>/<name>` with `dev_config=<subtype>/<cfgstring>`.
    public struct Backstore: Sendable, Equatable {
        public var hba: Int
        public var name: String
        /// Our cfgstring (`file:/path`, `sparse:/path;size=1G`, `raw:/dev/x`).
        public var cfgstring: String
        public var size: UInt64
        /// `hw_block_size` (default 512).
        public var blockSize: Int?
        /// `hw_max_sectors`: largest I/O in blocks (kernel default 128 = 64 KiB at 512).
        public var maxSectors: Int?
        /// `attrib/emulate_write_cache` after enable.
        public var writeCache: Bool?
        public var subtype: String

        public init(hba: Int, name: String, cfgstring: String, size: UInt64, blockSize: Int? = nil,
                    maxSectors: Int? = nil, writeCache: Bool? = nil, subtype: String = TCMUConfigString.subtype) {
            self.hba = hba
            self.name = name
            self.cfgstring = cfgstring
            self.size = size
            self.blockSize = blockSize
            self.maxSectors = maxSectors
            self.writeCache = writeCache
            self.subtype = subtype
        }

        /// configfs path relative to the target root (`core/user_1/disk0`).
        public var path: String { "core/user_\(hba)/\(name)" }
    }

    /// CHAP credentials (RFC 7143 §12.1.3); `mutual*` for the target's answer.
    public struct CHAP: Sendable, Equatable {
        public var userid: String
        public var password: String
        public var mutualUserid: String?
        public var mutualPassword: String?

        public init(userid: String, password: String, mutualUserid: String? = nil, mutualPassword: String? = nil) {
            self.userid = userid
            self.password = password
            self.mutualUserid = mutualUserid
            self.mutualPassword = mutualPassword
        }
    }

    public struct LUN: Sendable, Equatable {
        public var number: Int
        /// `Backstore.name` of one of `backstores`.
        public var backstore: String
        public init(number: Int, backstore: String) {
            self.number = number
            self.backstore = backstore
        }
    }

    /// An initiator allowed in, with the LUNs it sees (`mapped LUN → TPG LUN`).
    public struct ACL: Sendable, Equatable {
        public var initiator: String
        public var chap: CHAP?
        /// (mapped LUN number seen by the initiator, TPG LUN number); empty = all, same numbers.
        public var mappedLUNs: [(mapped: Int, tpgLUN: Int)]
        public var readOnly: Bool

        public init(initiator: String, chap: CHAP? = nil, mappedLUNs: [(mapped: Int, tpgLUN: Int)] = [], readOnly: Bool = false) {
            self.initiator = initiator
            self.chap = chap
            self.mappedLUNs = mappedLUNs
            self.readOnly = readOnly
        }

        public static func == (a: ACL, b: ACL) -> Bool {
            a.initiator == b.initiator && a.chap == b.chap && a.readOnly == b.readOnly
                && a.mappedLUNs.map(\.mapped) == b.mappedLUNs.map(\.mapped)
                && a.mappedLUNs.map(\.tpgLUN) == b.mappedLUNs.map(\.tpgLUN)
        }
    }

    public struct ISCSITarget: Sendable, Equatable {
        public var iqn: String
        public var tpgTag: Int
        public var luns: [LUN]
        /// `address:port` (IPv6 as `[addr]:port`).
        public var portals: [String]
        /// Empty: demo mode (any initiator, `generate_node_acls=1`).
        public var acls: [ACL]
        /// In demo mode: CHAP every initiator must answer (TPG `auth/`).
        public var demoModeCHAP: CHAP?

        public init(iqn: String, tpgTag: Int = 1, luns: [LUN], portals: [String], acls: [ACL] = [], demoModeCHAP: CHAP? = nil) {
            self.iqn = iqn
            self.tpgTag = tpgTag
            self.luns = luns
            self.portals = portals
            self.acls = acls
            self.demoModeCHAP = demoModeCHAP
        }

        public var tpgPath: String { "iscsi/\(iqn)/tpgt_\(tpgTag)" }
    }

    public var backstores: [Backstore]
    public var targets: [ISCSITarget]

    public init(backstores: [Backstore], targets: [ISCSITarget] = []) {
        self.backstores = backstores
        self.targets = targets
    }
}
