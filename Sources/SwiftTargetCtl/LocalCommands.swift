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
    @Option(help: "Where the manual pages go.") var manDirectory: String = "/usr/local/share/man/man8"
    @Option(help: "Prefix of the shell completion folders (bash-completion/completions, zsh/site-functions, fish/vendor_completions.d).")
    var completionPrefix: String = "/usr/local/share"
    @Flag(help: "Install only the unit, no manual pages or shell completions.") var noDocs = false

    var daemonPath: String {
        if let daemon { return daemon }
        let me = URL(fileURLWithPath: CommandLine.arguments[0]).resolvingSymlinksInPath()
        let sibling = me.deletingLastPathComponent().appendingPathComponent("swift-targetd").path
        if CommandLine.arguments[0].contains("/"), FileManager.default.isExecutableFile(atPath: sibling) { return sibling }
        return "/usr/local/bin/swift-targetd"
    }

    /// Folders the daemon writes that the hardening would make read-only: the configuration's
    /// (it saves changes and state files there) and those of file images under /etc, /usr,
    /// /boot, /home or /root, read from the configuration when it can be read.
    var writablePaths: [String] {
        let protected = ["/etc/", "/usr/", "/boot/", "/home/", "/root/"]
        var folders = [URL(fileURLWithPath: config).deletingLastPathComponent().path]
        if let loaded = try? ConfigStore(path: config).read().loaded.config {
            for t in loaded.targets {
                for l in t.luns where l.backstore.locator == .path && !l.backstore.isSizedByDevice {
                    let folder = URL(fileURLWithPath: l.path).deletingLastPathComponent().path
                    if protected.contains(where: { folder.hasPrefix($0) || folder + "/" == $0 }), !folders.contains(folder) {
                        folders.append(folder)
                    }
                }
            }
        }
        return folders.map { "-" + $0 }  // "-": a folder that does not exist yet is no error
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
            # READY=1 once every target listens and the API answers; RELOADING=1 during a reload.
            Type=notify
            NotifyAccess=main
            ExecStart=\(exec)
            # Re-reads the configuration file and applies the difference live.
            ExecReload=/bin/kill -HUP $MAINPID
            Restart=on-failure
            RestartSec=2
            RuntimeDirectory=swift-targetd
            RuntimeDirectoryMode=0755
            TimeoutStopSec=30
            KillSignal=SIGTERM
            LimitNOFILE=65536
            # Images, state files and the configuration are the admin's alone.
            UMask=0077

            # Hardening. /usr, /boot and /etc are read-only but for the configuration's folder
            # and image folders under them; /home and /root are read-only but for image folders.
            # /sys stays writable: the LIO-backed mode writes configfs (/sys/kernel/config).
            NoNewPrivileges=yes
            ProtectSystem=full
            ProtectHome=read-only
            ReadWritePaths=\(writablePaths.joined(separator: " "))
            ProtectControlGroups=yes
            ProtectClock=yes
            ProtectHostname=yes
            RestrictRealtime=yes
            RestrictSUIDSGID=yes
            LockPersonality=yes
            RestrictAddressFamilies=AF_UNIX AF_INET AF_INET6 AF_NETLINK
            # 3260 is below 1024 (NET_BIND_SERVICE); TCMU's netlink family is admin-only
            # (NET_ADMIN); image files and devices of other owners (DAC_OVERRIDE, FOWNER); the
            # API socket's group (CHOWN).
            CapabilityBoundingSet=CAP_NET_BIND_SERVICE CAP_NET_ADMIN CAP_DAC_OVERRIDE CAP_DAC_READ_SEARCH CAP_FOWNER CAP_CHOWN

            [Install]
            WantedBy=multi-user.target

            """
    }

    /// The manual pages and completion scripts of both programs, made by the programs themselves.
    func documentation() throws -> [(path: String, contents: Data)] {
        let me = (try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/exe")) ?? CommandLine.arguments[0]
        let version = ProductVersion.current
        let ctlExit = [("0", "success"), ("1", "failure: the daemon refused (an image that cannot be opened, a port in use, …)"),
                       ("2", "invalid input: a bad option, or a change that does not validate"), ("3", "not found: no such target, LUN, rule or session"),
                       ("4", "conflict: the target exists already, live sessions without --force, or the configuration file changed on disk"),
                       ("69", "the daemon is unreachable (socket missing or refusing)")]
        let daemonExit = [("0", "stopped cleanly (SIGTERM, SIGINT)"), ("1", "the start failed: an invalid configuration, an image that cannot be opened, a port in use"),
                          ("64", "a bad option or --lun spec (EX_USAGE)")]
        let files = [(config, "the configuration (JSON, mode 0600: it holds CHAP secrets); its .state folder keeps persistent reservations and saved mode pages"),
                     (defaultAPISocketPath, "the local admin API socket"),
                     (unitDirectory + "/swift-targetd.service", "the systemd unit")]
        var out: [(String, Data)] = []
        for (program, exits, seeAlso) in [(daemonPath, daemonExit, "swift-targetctl(8)"), (me, ctlExit, "swift-targetd(8)")] {
            let name = URL(fileURLWithPath: program).lastPathComponent
            let dump = try Self.output(of: program, ["--experimental-dump-help"])
            let page = try ManualPage.render(dump, version: version, exitStatus: exits, files: files,
                                             seeAlso: [seeAlso, "systemd.service(5)", "iscsiadm(8)"])
            out.append(("\(manDirectory)/\(name).8", Data(page.utf8)))
            out.append(("\(completionPrefix)/bash-completion/completions/\(name)", try Self.output(of: program, ["--generate-completion-script", "bash"])))
            out.append(("\(completionPrefix)/zsh/site-functions/_\(name)", try Self.output(of: program, ["--generate-completion-script", "zsh"])))
            out.append(("\(completionPrefix)/fish/vendor_completions.d/\(name).fish", try Self.output(of: program, ["--generate-completion-script", "fish"])))
        }
        return out
    }

    static func output(of program: String, _ arguments: [String]) throws -> Data {
        let p = Process()
        p.executableURL = URL(fileURLWithPath: program)
        p.arguments = arguments
        let pipe = Pipe()
        p.standardOutput = pipe
        p.standardError = FileHandle.nullDevice
        try p.run()
        let data = pipe.fileHandleForReading.readDataToEndOfFile()
        p.waitUntilExit()
        guard p.terminationStatus == 0, !data.isEmpty else {
            throw ValidationError("\(program) \(arguments.joined(separator: " ")) failed (exit \(p.terminationStatus))")
        }
        return data
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
        if !noDocs {
            do {
                for file in try documentation() {
                    try FileManager.default.createDirectory(atPath: URL(fileURLWithPath: file.path).deletingLastPathComponent().path,
                                                            withIntermediateDirectories: true)
                    try AtomicFile.write(file.contents, to: file.path, mode: 0o644)
                    print("wrote \(file.path)")
                }
            } catch {
                FileHandle.standardError.write(Data("swift-targetctl: cannot install the manual pages and completions: \(error)\n".utf8))
                throw ExitCode(CtlExitCode.failure)
            }
        }
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
