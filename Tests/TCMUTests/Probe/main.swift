// swift-tcmu-probe: runs TCMUHandler on a real kernel (the VM test, scripts/tcmu-vm-test.sh)
// until SIGINT/SIGTERM, printing one line whenever the served devices change.
// The daemon proper wires TCMUHandler into its own `tcmu` subcommand.
import Logging
import TCMU
#if canImport(Glibc)
import Glibc
#endif

var configuration = TCMUHandler.Configuration()
var args = CommandLine.arguments.dropFirst()
while let a = args.popFirst() {
    switch a {
    case "--reset-ring": configuration.resetRingOnOpen = true
    case "--no-netlink": configuration.useNetlink = false
    case "--subtype": configuration.subtype = args.popFirst() ?? configuration.subtype
    default:
        print("usage: swift-tcmu-probe [--reset-ring] [--no-netlink] [--subtype NAME]")
        exit(2)
    }
}
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

var last = ""
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
    usleep(100_000)
}
handler.stop()
print("probe: stopped")
