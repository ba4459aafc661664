/// One configfs step, relative to the LIO root (`/sys/kernel/config/target`).
public enum ConfigfsStep: Sendable, Equatable, CustomStringConvertible {
    case makeDirectory(String)
    case write(String, String)
    /// `link` → `target` (configfs symlinks bind LUNs to backstores and ACLs to LUNs).
    case symlink(target: String, link: String)
    case removeDirectory(String)
    case unlink(String)

    public var description: String {
        switch self {
        case .makeDirectory(let p): return "mkdir \(p)"
        case .write(let p, let v): return "echo '\(v)' > \(p)"
        case .symlink(let t, let l): return "ln -s \(t) \(l)"
        case .removeDirectory(let p): return "rmdir \(p)"
        case .unlink(let p): return "rm \(p)"
        }
    }
}

/// Turns an export spec into configfs steps in the order LIO accepts them (backstores
/// configured and enabled before LUNs link to them; the TPG enabled last; teardown in
/// reverse). Pure, so the order is unit-tested without a kernel.
public enum ConfigfsPlan {
    public enum Invalid: Error, Sendable, Equatable {
        case unknownBackstore(String)
        case unknownLUN(target: String, lun: Int)
        case badName(String)
    }

    public static func create(_ spec: LIOExportSpec) throws(Invalid) -> [ConfigfsStep] {
        try validate(spec)
        var steps: [ConfigfsStep] = []
        for b in spec.backstores { steps += backstoreSteps(b) }
        for t in spec.targets {
            let tpg = t.tpgPath
            steps.append(.makeDirectory(tpg))
            for lun in t.luns {
                let b = spec.backstores.first { $0.name == lun.backstore }!
                steps.append(.makeDirectory("\(tpg)/lun/lun_\(lun.number)"))
                steps.append(.symlink(target: b.path, link: "\(tpg)/lun/lun_\(lun.number)/\(portName(b))"))
            }
            for portal in t.portals {
                steps.append(.makeDirectory("\(tpg)/np/\(portal)"))
            }
            // Sorted so the plan (and its test) is deterministic.
            for (key, value) in t.parameters.sorted(by: { $0.key < $1.key }) {
                steps.append(.write("\(tpg)/param/\(key)", value))
            }
            for (name, value) in t.attributes.sorted(by: { $0.key < $1.key }) {
                steps.append(.write("\(tpg)/attrib/\(name)", value))
            }
            let demo = t.acls.isEmpty
            let chapUsed = demo ? t.demoModeCHAP != nil : t.acls.contains { $0.chap != nil }
            steps.append(.write("\(tpg)/attrib/authentication", chapUsed ? "1" : "0"))
            if demo {
                steps.append(.write("\(tpg)/attrib/generate_node_acls", "1"))
                steps.append(.write("\(tpg)/attrib/cache_dynamic_acls", "1"))
                steps.append(.write("\(tpg)/attrib/demo_mode_write_protect", "0"))
                if let chap = t.demoModeCHAP { steps += chapSteps(chap, dir: "\(tpg)/auth") }
            } else {
                steps.append(.write("\(tpg)/attrib/generate_node_acls", "0"))
                for acl in t.acls {
                    let dir = "\(tpg)/acls/\(acl.initiator)"
                    steps.append(.makeDirectory(dir))
                    for (mapped, tpgLUN, readOnly) in mappings(acl, t) {
                        steps.append(.makeDirectory("\(dir)/lun_\(mapped)"))
                        steps.append(.symlink(target: "\(tpg)/lun/lun_\(tpgLUN)", link: "\(dir)/lun_\(mapped)/lun_\(tpgLUN)"))
                        if readOnly { steps.append(.write("\(dir)/lun_\(mapped)/write_protect", "1")) }
                    }
                    if let chap = acl.chap { steps += chapSteps(chap, dir: "\(dir)/auth") }
                    for (name, value) in t.aclAttributes.sorted(by: { $0.key < $1.key }) {
                        steps.append(.write("\(dir)/attrib/\(name)", value))
                    }
                }
            }
            steps.append(.write("\(tpg)/enable", "1"))
        }
        return steps
    }

    /// The steps that undo `create` (tolerant of parts that are already gone).
    public static func remove(_ spec: LIOExportSpec) throws(Invalid) -> [ConfigfsStep] {
        try validate(spec)
        var steps: [ConfigfsStep] = []
        for t in spec.targets {
            let tpg = t.tpgPath
            steps.append(.write("\(tpg)/enable", "0"))
            for acl in t.acls {
                let dir = "\(tpg)/acls/\(acl.initiator)"
                for (mapped, tpgLUN, _) in mappings(acl, t) {
                    steps.append(.unlink("\(dir)/lun_\(mapped)/lun_\(tpgLUN)"))
                    steps.append(.removeDirectory("\(dir)/lun_\(mapped)"))
                }
                steps.append(.removeDirectory(dir))
            }
            for portal in t.portals { steps.append(.removeDirectory("\(tpg)/np/\(portal)")) }
            for lun in t.luns {
                let b = spec.backstores.first { $0.name == lun.backstore }!
                steps.append(.unlink("\(tpg)/lun/lun_\(lun.number)/\(portName(b))"))
                steps.append(.removeDirectory("\(tpg)/lun/lun_\(lun.number)"))
            }
            steps.append(.removeDirectory(tpg))
            steps.append(.removeDirectory("iscsi/\(t.iqn)"))
        }
        for b in spec.backstores {
            steps.append(.removeDirectory(b.path))
        }
        for hba in Set(spec.backstores.map(\.hba)).sorted() {
            steps.append(.removeDirectory("core/user_\(hba)"))
        }
        return steps
    }

    /// Steps that add LUNs to a target that is already live: their backstores, the TPG
    /// LUNs and the ACLs' mappings (LIO then tells the initiators REPORTED LUNS DATA HAS
    /// CHANGED). `spec` holds the target with its new LUN list.
    public static func addLUNs(_ numbers: Set<Int>, target iqn: String, in spec: LIOExportSpec) throws(Invalid) -> [ConfigfsStep] {
        try validate(spec)
        guard let t = spec.targets.first(where: { $0.iqn == iqn }) else { throw .badName(iqn) }
        let tpg = t.tpgPath
        var steps: [ConfigfsStep] = []
        for lun in t.luns where numbers.contains(lun.number) {
            let b = spec.backstores.first { $0.name == lun.backstore }!
            steps += backstoreSteps(b)
            steps.append(.makeDirectory("\(tpg)/lun/lun_\(lun.number)"))
            steps.append(.symlink(target: b.path, link: "\(tpg)/lun/lun_\(lun.number)/\(portName(b))"))
        }
        for acl in t.acls {
            let dir = "\(tpg)/acls/\(acl.initiator)"
            for (mapped, tpgLUN, readOnly) in mappings(acl, t) where numbers.contains(tpgLUN) {
                steps.append(.makeDirectory("\(dir)/lun_\(mapped)"))
                steps.append(.symlink(target: "\(tpg)/lun/lun_\(tpgLUN)", link: "\(dir)/lun_\(mapped)/lun_\(tpgLUN)"))
                if readOnly { steps.append(.write("\(dir)/lun_\(mapped)/write_protect", "1")) }
            }
        }
        return steps
    }

    /// Steps that take LUNs out of a live target (mappings, TPG LUNs, backstores); `spec`
    /// holds the target with its old LUN list.
    public static func removeLUNs(_ numbers: Set<Int>, target iqn: String, in spec: LIOExportSpec) throws(Invalid) -> [ConfigfsStep] {
        try validate(spec)
        guard let t = spec.targets.first(where: { $0.iqn == iqn }) else { throw .badName(iqn) }
        let tpg = t.tpgPath
        var steps: [ConfigfsStep] = []
        for acl in t.acls {
            let dir = "\(tpg)/acls/\(acl.initiator)"
            for (mapped, tpgLUN, _) in mappings(acl, t) where numbers.contains(tpgLUN) {
                steps.append(.unlink("\(dir)/lun_\(mapped)/lun_\(tpgLUN)"))
                steps.append(.removeDirectory("\(dir)/lun_\(mapped)"))
            }
        }
        for lun in t.luns where numbers.contains(lun.number) {
            let b = spec.backstores.first { $0.name == lun.backstore }!
            steps.append(.unlink("\(tpg)/lun/lun_\(lun.number)/\(portName(b))"))
            steps.append(.removeDirectory("\(tpg)/lun/lun_\(lun.number)"))
            steps.append(.removeDirectory(b.path))
        }
        return steps
    }

    private static func backstoreSteps(_ b: LIOExportSpec.Backstore) -> [ConfigfsStep] {
        var steps: [ConfigfsStep] = [.makeDirectory(b.path)]
        // control takes comma-separated key=value pairs: one per write keeps values intact.
        steps.append(.write(b.path + "/control", "dev_size=\(b.size)"))
        steps.append(.write(b.path + "/control", "dev_config=\(b.subtype)/\(b.cfgstring)"))
        if let bs = b.blockSize { steps.append(.write(b.path + "/control", "hw_block_size=\(bs)")) }
        if let ms = b.maxSectors { steps.append(.write(b.path + "/control", "hw_max_sectors=\(ms)")) }
        steps.append(.write(b.path + "/enable", "1"))
        // Aborts reach the ring as TMR entries only when asked for (default off).
        steps.append(.write(b.path + "/attrib/tmr_notification", "1"))
        // Settable until the device is exported (linked to a LUN).
        if let t = b.commandTimeout { steps.append(.write(b.path + "/attrib/cmd_time_out", "\(t)")) }
        // TCMU devices start with the cache off; only turning it on needs a RECONFIG.
        if b.writeCache == true { steps.append(.write(b.path + "/attrib/emulate_write_cache", "1")) }
        return steps
    }

    private static func portName(_ b: LIOExportSpec.Backstore) -> String { "user_\(b.hba)_\(b.name)" }

    /// (mapped LUN, TPG LUN, write protected) for each LUN an ACL sees.
    private static func mappings(_ acl: LIOExportSpec.ACL, _ t: LIOExportSpec.ISCSITarget) -> [(Int, Int, Bool)] {
        if acl.mappedLUNs.isEmpty && !acl.explicitLUNs { return t.luns.map { ($0.number, $0.number, acl.readOnly) } }
        return acl.mappedLUNs.map { ($0.mapped, $0.tpgLUN, acl.readOnly || $0.readOnly) }
    }

    private static func chapSteps(_ chap: LIOExportSpec.CHAP, dir: String) -> [ConfigfsStep] {
        var s: [ConfigfsStep] = [.write("\(dir)/userid", chap.userid), .write("\(dir)/password", chap.password)]
        if let u = chap.mutualUserid, let p = chap.mutualPassword {
            s += [.write("\(dir)/userid_mutual", u), .write("\(dir)/password_mutual", p)]
        }
        return s
    }

    private static func validate(_ spec: LIOExportSpec) throws(Invalid) {
        // Names become path components: no slashes, no dot-dot, nothing empty.
        func check(_ name: String) throws(Invalid) {
            if name.isEmpty || name.contains("/") || name == "." || name == ".." || name.contains("\n") {
                throw .badName(name)
            }
        }
        for b in spec.backstores {
            try check(b.name)
            if b.cfgstring.contains(",") || b.cfgstring.contains("\n") { throw .badName(b.cfgstring) }
        }
        for t in spec.targets {
            try check(t.iqn)
            for p in t.portals { try check(p) }
            for table in [t.parameters, t.attributes, t.aclAttributes] {
                for (key, value) in table {
                    try check(key)
                    if value.contains("\n") { throw .badName(value) }
                }
            }
            for l in t.luns where !spec.backstores.contains(where: { $0.name == l.backstore }) {
                throw .unknownBackstore(l.backstore)
            }
            for a in t.acls {
                try check(a.initiator)
                for m in a.mappedLUNs where !t.luns.contains(where: { $0.number == m.tpgLUN }) {
                    throw .unknownLUN(target: t.iqn, lun: m.tpgLUN)
                }
            }
        }
    }
}
