import AdminAPI
import ArgumentParser
import Foundation
import TargetConfig

/// `swift-targetctl import-ietd`: converts an IET configuration (no daemon needed).
struct ImportIETD: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "import-ietd",
        abstract: "Convert ietd.conf (+ initiators.allow, targets.allow) into a configuration file; prints what was not mapped.")

    @Option(name: .customLong("ietd-conf"), help: "Path of ietd.conf.") var ietdConf: String = "/etc/iet/ietd.conf"
    @Option(name: .customLong("initiators-allow"), help: "initiators.allow (missing = allow all).") var initiatorsAllow: String?
    @Option(name: .customLong("targets-allow"), help: "targets.allow (missing = all addresses).") var targetsAllow: String?
    @Option(help: "Listening portal(s), ADDRESS:PORT (default 0.0.0.0:3260).") var portal: [String] = []
    @Option(help: "Output configuration file (mode 0600).") var output: String
    @Flag(help: "Replace the output file if it exists.") var force = false

    func run() throws {
        var portals: [Portal] = []
        for p in portal {
            guard let parsed = Portal(p) else { throw ValidationError("--portal \(p): not ADDRESS:PORT") }
            portals.append(parsed)
        }
        if portals.isEmpty { portals = [Portal(address: "0.0.0.0", port: 3260)] }
        if !force && FileManager.default.fileExists(atPath: output) {
            FileHandle.standardError.write(Data("swift-targetctl: \(output) exists; give --force to replace it\n".utf8))
            throw ExitCode(CtlExitCode.conflict)
        }
        let result: IETImportResult
        do {
            result = try IETImporter.importFiles(ietdConf: ietdConf, initiatorsAllow: initiatorsAllow,
                                                 targetsAllow: targetsAllow, portals: portals)
        } catch {
            FileHandle.standardError.write(Data("swift-targetctl: \(error)\n".utf8))
            throw ExitCode(CtlExitCode.notFound)
        }
        for m in result.messages { print(m) }
        let errors = result.diagnostics.filter { $0.severity == .error }
        if !errors.isEmpty {
            for e in errors { FileHandle.standardError.write(Data("\(e)\n".utf8)) }
            throw ExitCode(CtlExitCode.invalid)
        }
        do { try ConfigStore(path: output).save(result.config) } catch {
            FileHandle.standardError.write(Data("swift-targetctl: \(error)\n".utf8))
            throw ExitCode(CtlExitCode.failure)
        }
        print("wrote \(output): \(result.config.targets.count) target(s); \(result.unmapped.count) setting(s) not mapped")
    }
}

/// `swift-targetctl install-service`: a systemd unit for `swift-targetd run`.
struct InstallService: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "install-service",
        abstract: "Write the systemd unit swift-targetd.service and enable it (--dry-run prints it).")

    @Option(help: "Path of swift-targetd (default: next to this program, else /usr/local/bin/swift-targetd).")
    var daemon: String?
    @Option(help: "Configuration file the service runs.") var config: String = "/etc/swift-target/config.json"
    @Option(help: "Where to write the unit.") var unitDirectory: String = "/etc/systemd/system"
    @Option(name: .customLong("api-group"), help: "Group allowed to use the API socket.") var apiGroup: String?
    @Flag(help: "Print the unit instead of installing it.") var dryRun = false
    @Flag(help: "Do not run systemctl enable.") var noEnable = false

    var daemonPath: String {
        if let daemon { return daemon }
        let me = URL(fileURLWithPath: CommandLine.arguments[0]).resolvingSymlinksInPath()
        let sibling = me.deletingLastPathComponent().appendingPathComponent("swift-targetd").path
        if CommandLine.arguments[0].contains("/"), FileManager.default.isExecutableFile(atPath: sibling) { return sibling }
        return "/usr/local/bin/swift-targetd"
    }

    var unit: String {
        var exec = "\(daemonPath) run --config \(config)"
        if let apiGroup { exec += " --api-group \(apiGroup)" }
        return """
            [Unit]
            Description=SwiftTarget iSCSI target daemon
            After=network-online.target local-fs.target
            Wants=network-online.target

            [Service]
            Type=simple
            ExecStart=\(exec)
            Restart=on-failure
            RestartSec=2
            RuntimeDirectory=swift-targetd
            RuntimeDirectoryMode=0755
            TimeoutStopSec=30
            KillSignal=SIGTERM
            LimitNOFILE=65536

            [Install]
            WantedBy=multi-user.target

            """
    }

    func run() throws {
        if dryRun {
            print(unit, terminator: "")
            return
        }
        let path = unitDirectory + "/swift-targetd.service"
        do {
            try FileManager.default.createDirectory(atPath: unitDirectory, withIntermediateDirectories: true)
            try AtomicFile.write(Data(unit.utf8), to: path, mode: 0o644)
        } catch {
            FileHandle.standardError.write(Data("swift-targetctl: cannot write \(path): \(error)\n".utf8))
            throw ExitCode(CtlExitCode.failure)
        }
        print("wrote \(path)")
        if !FileManager.default.fileExists(atPath: config) {
            print("note: \(config) does not exist yet; create it (see docs/config-example.json) before starting the service")
        }
        guard !noEnable, let systemctl = ["/usr/bin/systemctl", "/bin/systemctl"].first(where: FileManager.default.isExecutableFile) else {
            if !noEnable { print("systemctl not found: enable the unit yourself") }
            return
        }
        for args in [["daemon-reload"], ["enable", "swift-targetd.service"]] {
            let p = Process()
            p.executableURL = URL(fileURLWithPath: systemctl)
            p.arguments = args
            try p.run()
            p.waitUntilExit()
            if p.terminationStatus != 0 {
                FileHandle.standardError.write(Data("swift-targetctl: systemctl \(args.joined(separator: " ")) failed\n".utf8))
                throw ExitCode(CtlExitCode.failure)
            }
        }
        print("enabled swift-targetd.service (start it with: systemctl start swift-targetd)")
    }
}
