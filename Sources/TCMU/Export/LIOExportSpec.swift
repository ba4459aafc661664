/// What to create in LIO's configfs so the kernel exports TCMU devices served by this
/// handler: `user_<hba>` backstores and an iSCSI target with portal group, LUNs, portals,
/// ACLs and CHAP. A plain value; `ConfigfsPlan` turns it into configfs steps.
public struct LIOExportSpec: Sendable, Equatable, Codable {
    /// A TCMU backstore `core/user_<hba>/<name>` with `dev_config=<subtype>/<cfgstring>`.
    public struct Backstore: Sendable, Equatable, Codable {
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
        /// `attrib/cmd_time_out` in seconds (nil: the kernel's 30 s).
        public var commandTimeout: Int?
        public var subtype: String

        public init(hba: Int, name: String, cfgstring: String, size: UInt64, blockSize: Int? = nil,
                    maxSectors: Int? = nil, writeCache: Bool? = nil, commandTimeout: Int? = nil,
                    subtype: String = TCMUConfigString.subtype) {
            self.hba = hba
            self.name = name
            self.cfgstring = cfgstring
            self.size = size
            self.blockSize = blockSize
            self.maxSectors = maxSectors
            self.writeCache = writeCache
            self.commandTimeout = commandTimeout
            self.subtype = subtype
        }

        /// configfs path relative to the target root (`core/user_1/disk0`).
        public var path: String { "core/user_\(hba)/\(name)" }
    }

    /// CHAP credentials (RFC 7143 §12.1.3); `mutual*` for the target's answer.
    public struct CHAP: Sendable, Equatable, Codable {
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

    public struct LUN: Sendable, Equatable, Codable {
        public var number: Int
        /// `Backstore.name` of one of `backstores`.
        public var backstore: String
        public init(number: Int, backstore: String) {
            self.number = number
            self.backstore = backstore
        }
    }

    /// A LUN an ACL sees: `mapped` is the number the initiator sees, `tpgLUN` the TPG's LUN.
    public struct LUNMapping: Sendable, Equatable, Codable {
        public var mapped: Int
        public var tpgLUN: Int
        /// `write_protect` on this mapped LUN.
        public var readOnly: Bool
        public init(mapped: Int, tpgLUN: Int, readOnly: Bool = false) {
            self.mapped = mapped
            self.tpgLUN = tpgLUN
            self.readOnly = readOnly
        }
        enum CodingKeys: String, CodingKey { case mapped, tpgLUN, readOnly }
        public init(from decoder: Decoder) throws {
            let c = try decoder.container(keyedBy: CodingKeys.self)
            mapped = try c.decode(Int.self, forKey: .mapped)
            tpgLUN = try c.decode(Int.self, forKey: .tpgLUN)
            readOnly = try c.decodeIfPresent(Bool.self, forKey: .readOnly) ?? false
        }
    }

    /// An initiator allowed in, with the LUNs it sees.
    public struct ACL: Sendable, Equatable, Codable {
        public var initiator: String
        public var chap: CHAP?
        /// Empty and not `explicitLUNs` = all of the TPG's LUNs, same numbers.
        public var mappedLUNs: [LUNMapping]
        public var readOnly: Bool
        /// `mappedLUNs` is exactly what the initiator sees, even when empty (a LUN map).
        public var explicitLUNs: Bool

        public init(initiator: String, chap: CHAP? = nil, mappedLUNs: [LUNMapping] = [], readOnly: Bool = false,
                    explicitLUNs: Bool = false) {
            self.initiator = initiator
            self.chap = chap
            self.mappedLUNs = mappedLUNs
            self.readOnly = readOnly
            self.explicitLUNs = explicitLUNs
        }
        enum CodingKeys: String, CodingKey { case initiator, chap, mappedLUNs, readOnly, explicitLUNs }
        public init(from decoder: Decoder) throws {
            let c = try decoder.container(keyedBy: CodingKeys.self)
            initiator = try c.decode(String.self, forKey: .initiator)
            chap = try c.decodeIfPresent(CHAP.self, forKey: .chap)
            mappedLUNs = try c.decodeIfPresent([LUNMapping].self, forKey: .mappedLUNs) ?? []
            readOnly = try c.decodeIfPresent(Bool.self, forKey: .readOnly) ?? false
            explicitLUNs = try c.decodeIfPresent(Bool.self, forKey: .explicitLUNs) ?? false
        }
    }

    public struct ISCSITarget: Sendable, Equatable, Codable {
        public var iqn: String
        public var tpgTag: Int
        public var luns: [LUN]
        /// `address:port` (IPv6 as `[addr]:port`).
        public var portals: [String]
        /// Empty: demo mode (any initiator, `generate_node_acls=1`).
        public var acls: [ACL]
        /// In demo mode: CHAP every initiator must answer (TPG `auth/`).
        public var demoModeCHAP: CHAP?
        /// TPG `param/<key>`: the login keys LIO offers (RFC 7143 §13: MaxBurstLength, HeaderDigest, …).
        public var parameters: [String: String]
        /// TPG `attrib/<name>` beyond what ACL mode sets (login_timeout, default_cmdsn_depth, …).
        public var attributes: [String: String]
        /// `acls/<initiator>/attrib/<name>` for every ACL (nopin_timeout, nopin_response_timeout).
        public var aclAttributes: [String: String]

        public init(iqn: String, tpgTag: Int = 1, luns: [LUN], portals: [String], acls: [ACL] = [], demoModeCHAP: CHAP? = nil,
                    parameters: [String: String] = [:], attributes: [String: String] = [:], aclAttributes: [String: String] = [:]) {
            self.parameters = parameters
            self.attributes = attributes
            self.aclAttributes = aclAttributes
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
