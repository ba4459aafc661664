// swift-tcmu-probe: runs TCMUHandler on a real kernel (the VM test, scripts/tcmu-vm-test.sh)
// until SIGINT/SIGTERM, printing one line whenever the served devices change.
// The daemon proper wires TCMUHandler into its own `tcmu` subcommand.
import Logging
import TCMU
#if canImport(Glibc)
import Glibc
#endif

var configuration = TCMUHandler.Configuration()
var backstores: [LIOExportSpec.Backstore] = []
var iqn: String?
var portals: [String] = []
var acls: [String] = []
var chap: LIOExportSpec.CHAP?
func usage() -> Never {
    print("""
        usage: swift-tcmu-probe [--reset-ring] [--no-netlink] [--poll-us N] [--handover-dir DIR] [--subtype NAME]
               [--backstore NAME,BYTES,CFGSTRING]... [--iscsi IQN --portal ADDR:PORT [--acl INITIATOR]... [--chap USER:PASS]]
        """)
    exit(2)
}
var args = CommandLine.arguments.dropFirst()
while let a = args.popFirst() {
    switch a {
    case "--reset-ring": configuration.resetRingOnOpen = true
    case "--no-netlink": configuration.useNetlink = false
    case "--poll-us": configuration.pollMicroseconds = Int(args.popFirst() ?? "") ?? 0
    case "--handover-dir": configuration.handoverDirectory = args.popFirst()
    case "--subtype": configuration.subtype = args.popFirst() ?? configuration.subtype
    case "--backstore":
        let f = (args.popFirst() ?? "").split(separator: ",", maxSplits: 2).map(String.init)
        guard f.count == 3, let size = UInt64(f[1]) else { usage() }
        backstores.append(.init(hba: 10, name: f[0], cfgstring: f[2], size: size))
    case "--iscsi": iqn = args.popFirst()
    case "--portal": portals.append(args.popFirst() ?? "")
    case "--acl": acls.append(args.popFirst() ?? "")
    case "--chap":
        let f = (args.popFirst() ?? "").split(separator: ":", maxSplits: 1).map(String.init)
        guard f.count == 2 else { usage() }
        chap = .init(userid: f[0], password: f[1])
    default: usage()
    }
}
let export: LIOExportSpec? = backstores.isEmpty ? nil : LIOExportSpec(
    backstores: backstores,
    targets: iqn.map { iqn in
        let luns = backstores.enumerated().map { LIOExportSpec.LUN(number: $0.offset, backstore: $0.element.name) }
        return [LIOExportSpec.ISCSITarget(
            iqn: iqn, luns: luns, portals: portals,
            acls: acls.map { LIOExportSpec.ACL(initiator: $0, chap: chap) },
            demoModeCHAP: acls.isEmpty ? chap : nil)]
    } ?? [])
LoggingSystem.bootstrap { StreamLogHandler.standardError(label: $0) }

signal(SIGINT) { _ in stopRequested = 1 }
signal(SIGTERM) { _ in stopRequested = 1 }
nonisolated(unsafe) var stopRequested: sig_atomic_t = 0

let handler = TCMUHandler(configuration: configuration)
do {
    try handler.start()
} catch {
    print("probe: start failed: \(error)")
    exit(1)
}
print("probe: started")
fflush(nil)
let applier = ConfigfsApplier()
if let export {
    do {
        try applier.apply(ConfigfsPlan.create(export))
        print("probe: exported \(export.backstores.count) backstore(s), \(export.targets.count) target(s)")
    } catch {
        print("probe: export failed: \(error)")
    }
    fflush(nil)
}

var last = ""
var lastTMR = ""
while stopRequested == 0 {
    // Device set, capacity and config; not the command counts, which change constantly.
    let now = handler.devices.map { d in
        "\(d.uio) \(d.name.device) capacity=\(d.capacity) cfg=\(d.name.cfgstring)"
    }.joined(separator: "; ")
    if now != last {
        print("probe: devices: [\(now)]")
        fflush(nil)
        last = now
    }
    // Task management seen on the rings (the VM test provokes aborts).
    let tmr = handler.devices.map { d in
        "\(d.uio) tmr=\(d.statistics.taskManagementEntries) abortedBeforeStart=\(d.statistics.abortedBeforeStart)"
    }.joined(separator: "; ")
    if tmr != lastTMR {
        print("probe: task management: [\(tmr)]")
        fflush(nil)
        lastTMR = tmr
    }
    usleep(100_000)
}
if let export {
    do {
        try applier.apply(ConfigfsPlan.remove(export), ignoringMissing: true)
        print("probe: export removed")
    } catch {
        print("probe: export removal failed: \(error)")
    }
}
handler.stop()
print("probe: stopped")
