import AdminAPI
import AdminCore
import AdminWeb
import Backstores
import ArgumentParser
import Foundation
import LIORuntime
import Logging
import TCMU
import TargetConfig
import TargetRuntime

/// Which iSCSI target serves the configuration.
enum FabricChoice: String, ExpressibleByArgument, CaseIterable {
    /// LIO when the kernel has it (configfs + target_core_user), else the embedded fabric.
    case auto
    /// The kernel's LIO target; our daemon is its TCMU backstore handler.
    case lio
    /// The daemon's own iSCSI target (RFC 7143) over TCP.
    case embedded
}

/// What `run` needs of a runtime; both the embedded and the LIO-backed one provide it.
protocol DaemonRuntime: AdminBackend {
    func start() async throws
    func shutdown() async
    var loadWarnings: [ConfigDiagnostic] { get }
}
extension TargetService: DaemonRuntime {}
extension LIOService: DaemonRuntime {}

/// `swift-targetd run --config PATH`: serve a configuration file, with the local API.
struct RunCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "run",
        abstract: "Serve the targets of a configuration file, with the local admin API.",
        discussion: """
            Changes made through the API (swift-targetctl, the web console) are validated, saved
            atomically to the configuration file and applied live. SIGTERM/SIGINT: sessions are
            asked to log out, in-flight commands complete, images are flushed.
            Where the kernel has LIO (configfs and target_core_user), the configuration becomes LIO
            objects and this daemon is their TCMU backstore handler; elsewhere its own iSCSI target
            serves it (--fabric chooses; auto says which it picked).
            Example:
              swift-targetd run --config /etc/swift-target/config.json
            """
    )

    @OptionGroup(title: "Limits against guessing and exhaustion (embedded target)")
    var limits: LimitOptions

    @Option(help: "Configuration file (JSON; see docs/config-example.json).")
    var config: String

    @Option(name: .customLong("api-socket"), help: "Unix socket of the local admin API.")
    var apiSocket: String = defaultAPISocketPath

    @Option(name: .customLong("api-group"), help: "Group allowed to use the API socket (mode 0660). Default: the daemon's group.")
    var apiGroup: String?

    @Option(help: "Log level: trace, debug, info, notice, warning, error, critical.")
    var logLevel: String = "info"

    @Option(help: "Log lines as text or as one JSON object per line (json).")
    var logFormat: LogFormat = .text

    @Option(help: "I/O worker threads (default: one per CPU, at least 2; 32 when the configuration has rbd LUNs at start).")
    var ioThreads: Int?

    @Option(help: "Serve the web console and /metrics on HOST:PORT (e.g. 127.0.0.1:9860). Needs --web-credentials.")
    var web: String?

    @Option(name: .customLong("web-credentials"), help: "Web console credentials file (create it with `swift-targetd web-password PATH`).")
    var webCredentials: String?

    @Option(help: "Seconds sessions get to log out on stop/restart/shutdown.")
    var logoutGrace: Int = 5

    @Option(help: "Which iSCSI target serves the configuration: auto (LIO when the kernel has it), lio, embedded.")
    var fabric: FabricChoice = .auto

    @Option(name: .customLong("lio-state"), help: "LIO mode: record of the LIO objects this daemon created.")
    var lioState: String = LIOExportRecord.defaultPath

    @Flag(name: .customLong("lio-keep-on-exit"), help: "LIO mode: leave the export in place on exit, so a restart keeps the initiators' sessions.")
    var lioKeepOnExit = false

    @Option(name: .customLong("tcmu-workers"), help: "LIO mode: concurrent commands per TCMU device.")
    var tcmuWorkers: Int = 8

    @Option(name: .customLong("tcmu-poll-us"),
            help: "LIO mode: microseconds a TCMU ring is polled after a command before its thread sleeps (0: never; polling pauses by itself while commands come further apart).")
    var tcmuPollMicroseconds: Int = 50

    func validate() throws {
        guard Logger.Level(rawValue: logLevel) != nil else { throw ValidationError("unknown --log-level '\(logLevel)'") }
        if let ioThreads, !(1...256).contains(ioThreads) { throw ValidationError("--io-threads must be 1…256") }
        guard (0...600).contains(logoutGrace) else { throw ValidationError("--logout-grace must be 0…600") }
        guard (1...128).contains(tcmuWorkers) else { throw ValidationError("--tcmu-workers must be 1…128") }
        guard (0...100_000).contains(tcmuPollMicroseconds) else { throw ValidationError("--tcmu-poll-us must be 0…100000") }
        if web != nil && webCredentials == nil { throw ValidationError("--web needs --web-credentials FILE") }
        if let web { _ = try Portal.parse(web) }
    }

    func run() async throws {
        MemoryTuning.apply()
        // A stop asked for during the start is kept and carried out once the start is done.
        SignalWaiter.armTermination()
        bootstrapLogging(level: Logger.Level(rawValue: logLevel)!, format: logFormat)
        let logger = Logger(label: "swift-targetd")
        var group: gid_t?
        if let apiGroup {
            guard let g = AdminAPIServer.groupID(named: apiGroup) else { throw DaemonError("--api-group: no group named \(apiGroup)") }
            group = g
        }

        var service: any DaemonRuntime
        do {
            service = try makeRuntime(logger: logger)
        } catch let e as ConfigError {
            throw DaemonError("invalid configuration, \(e.errors.count) error\(e.errors.count == 1 ? "" : "s"):\n\(e)")
        } catch let e as ConfigIOError {
            throw DaemonError("cannot read the configuration: \(e)")
        }
        for w in service.loadWarnings { logger.warning("\(w)") }
        do {
            try await service.start()
        } catch let e as TCMUHandler.StartError where fabric == .auto {
            logger.notice("LIO is present but the TCMU handler cannot start (\(e)); serving through the embedded iSCSI target")
            service = try makeRuntime(logger: logger, forceEmbedded: true)
            do { try await service.start() } catch { throw DaemonError("\(error)") }
        } catch {
            throw DaemonError("\(error)")
        }

        let api = AdminAPIServer(backend: service, socketPath: apiSocket, group: group,
                                 logger: Logger(label: "swift-targetd.api"))
        do { try api.prepareSocketPath() } catch {
            await service.shutdown()
            throw DaemonError("\(error)")
        }
        // Wait until the API accepts connections (or failed to start) before announcing readiness.
        let (events, continuation) = AsyncStream<String?>.makeStream()
        let apiTask = Task {
            do {
                try await api.run(onReady: { continuation.yield(nil) })
            } catch {
                logger.error("API server stopped: \(error)")
                continuation.yield("\(error)")
            }
            continuation.finish()
        }
        for await event in events {
            if let failure = event {
                await service.shutdown()
                throw DaemonError("cannot serve the API on \(apiSocket): \(failure)")
            }
            break
        }
        var webTask: Task<Void, Never>?
        if let web, let webCredentials {
            let portal = try Portal.parse(web)
            let credentials: WebCredentials
            do { credentials = try WebCredentials.load(path: webCredentials) } catch {
                apiTask.cancel()
                await service.shutdown()
                throw DaemonError("--web-credentials \(webCredentials): \(error)")
            }
            var webOptions = AdminWebOptions()
            webOptions.rbdImages = { pool, options in try RBDPool.imageNames(pool: pool, options: options) }
            let console = AdminWebServer(backend: service, credentials: credentials,
                                         logger: Logger(label: "swift-targetd.web"), options: webOptions)
            let app = console.makeApplication(host: portal.host, port: portal.port)
            webTask = Task {
                // The statistics history the console charts is sampled while it runs.
                await withTaskGroup(of: Void.self) { group in
                    group.addTask { await console.runStatisticsSampling() }
                    group.addTask {
                        do { try await app.run() } catch where !Task.isCancelled { logger.error("web console stopped: \(error)") } catch {}
                    }
                    await group.next()
                    group.cancelAll()
                }
            }
            logger.notice("web console", metadata: ["url": "http://\(portal.advertised)/"])
        }
        let cfg = await service.configuration()
        var urls = ""
        for t in cfg.targets {
            for l in t.luns { urls += "iscsi://\(cfg.portals[0])/\(t.name)/\(l.id)    (\(l.backstore.rawValue):\(l.path))\n" }
        }
        FileHandle.standardOutput.write(Data(urls.utf8))
        logger.notice("running", metadata: ["targets": "\(cfg.targets.count)", "api": "\(apiSocket)"])
        // Reloads are taken from here on: READY=1 tells systemd they are.
        let reloading = service
        let configPath = config
        SignalWaiter.onHangup {
            Task {
                SystemdNotify.reloading()
                defer { SystemdNotify.ready(status: "reloaded \(configPath)") }
                do {
                    let report = try await reloading.reload()
                    for w in report.warnings { logger.warning("reload: \(w)") }
                    logger.notice("reloaded \(configPath)", metadata: ["changes": "\(report.effects.count)"])
                    for e in report.effects {
                        logger.notice("reload: \(e.target.map { "target \($0)" } ?? "global")\(e.lun.map { " LUN \($0)" } ?? ""): \(e.setting) [\(e.applyMode)]: \(e.outcome)")
                    }
                } catch {
                    logger.error("reload of \(configPath) refused, nothing changed: \((error as? AdminError)?.message ?? "\(error)")")
                }
            }
        }
        SystemdNotify.ready(status: "serving \(cfg.targets.count) target(s)")

        await SignalWaiter.waitForTermination()
        SystemdNotify.stopping()
        logger.notice("shutting down: asking initiators to log out")
        apiTask.cancel()
        webTask?.cancel()
        _ = await apiTask.result
        _ = await webTask?.result
        await service.shutdown()
        logger.notice("stopped")
    }
}

extension RunCommand {
    /// The LIO-backed runtime where the kernel has LIO (or `--fabric lio`), else the
    /// embedded fabric; the fallback is said once, with the reason.
    func makeRuntime(logger: Logger, forceEmbedded: Bool = false) throws -> any DaemonRuntime {
        var useLIO = fabric == .lio
        if fabric == .auto && !forceEmbedded {
            switch LIOAvailability.probe() {
            case .available:
                useLIO = true
            case .unavailable(let reason):
                logger.notice("LIO is not available (\(reason)); serving through the embedded iSCSI target")
            }
        } else if fabric == .lio, case .unavailable(let reason) = LIOAvailability.probe() {
            throw DaemonError("--fabric lio: \(reason)")
        }
        if useLIO {
            var options = LIOServiceOptions()
            options.logger = logger
            options.record = LIOExportRecord(path: lioState)
            options.keepExportOnShutdown = lioKeepOnExit
            options.handler.workerThreadsPerDevice = tcmuWorkers
            options.handler.pollMicroseconds = tcmuPollMicroseconds
            // Beside the export record: ring tails noted at a clean stop (see RingTakeover).
            let stateDirectory = lioState.split(separator: "/", omittingEmptySubsequences: false).dropLast().joined(separator: "/")
            options.handler.handoverDirectory = (stateDirectory.isEmpty && !lioState.hasPrefix("/") ? "." : stateDirectory) + "/tcmu-handover"
            logger.notice("LIO-backed mode: LUNs are TCMU backstores served by this daemon")
            let service = try LIOService(store: ConfigStore(path: config), options: options)
            if !(service.initialLimits ?? LimitSettings()).isEmpty || !limits.settings.isEmpty {
                logger.notice("the configured limits apply to the embedded iSCSI target only; LIO applies its own")
            }
            return service
        }
        var options = TargetServiceOptions()
        options.logger = logger
        options.ioThreads = ioThreads
        options.logoutGrace = .seconds(Int64(logoutGrace))
        options.limitOverrides = limits.settings
        return try TargetService(store: ConfigStore(path: config), options: options)
    }
}

/// `swift-targetd import-ietd`: converts an IET configuration.
struct ImportIETDCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "import-ietd",
        abstract: "Convert ietd.conf (+ initiators.allow, targets.allow) into a configuration file.",
        discussion: "Prints what could not be mapped. Exit status 2 when the result does not validate."
    )

    @Option(name: .customLong("ietd-conf"), help: "Path of ietd.conf.")
    var ietdConf: String
    @Option(name: .customLong("initiators-allow"), help: "Path of initiators.allow (missing = allow all).")
    var initiatorsAllow: String?
    @Option(name: .customLong("targets-allow"), help: "Path of targets.allow (missing = all addresses).")
    var targetsAllow: String?
    @Option(help: "Listening portal(s) for the result, ADDRESS:PORT (default 0.0.0.0:3260).")
    var portal: [String] = []
    @Option(help: "Where to write the configuration (mode 0600).")
    var output: String
    @Flag(help: "Replace the output file if it exists.")
    var force = false

    func run() throws {
        var portals: [TargetConfig.Portal] = []
        for p in portal {
            guard let parsed = TargetConfig.Portal(p) else { throw ValidationError("--portal \(p): not ADDRESS:PORT") }
            portals.append(parsed)
        }
        if portals.isEmpty { portals = [TargetConfig.Portal(address: "0.0.0.0", port: 3260)] }
        if !force && FileManager.default.fileExists(atPath: output) {
            throw DaemonError("\(output) exists; give --force to replace it")
        }
        let result: IETImportResult
        do {
            result = try IETImporter.importFiles(ietdConf: ietdConf, initiatorsAllow: initiatorsAllow,
                                                 targetsAllow: targetsAllow, portals: portals)
        } catch {
            throw DaemonError("\(error)")
        }
        for m in result.messages { print(m) }
        let errors = result.diagnostics.filter { $0.severity == .error }
        if !errors.isEmpty {
            for e in errors { FileHandle.standardError.write(Data("\(e)\n".utf8)) }
            throw ExitCode(2)
        }
        do { try ConfigStore(path: output).save(result.config) } catch { throw DaemonError("\(error)") }
        print("wrote \(output): \(result.config.targets.count) target(s); \(result.unmapped.count) setting(s) not mapped")
    }
}

/// `swift-targetd web-password PATH`: writes the web console's credentials file (salted
/// PBKDF2 hash, mode 0600). The password comes from stdin, never from the command line.
struct WebPasswordCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "web-password",
        abstract: "Create the web console credentials file from a password read on stdin.")

    @Argument(help: "Where to write the credentials file (mode 0600).")
    var path: String

    @Option(help: "Admin user name.")
    var user: String = "admin"

    func run() throws {
        guard let password = readLine(strippingNewline: true), !password.isEmpty else {
            throw DaemonError("give the password on stdin (e.g. `read -rs P; echo \"$P\" | swift-targetd web-password FILE`)")
        }
        guard password.utf8.count >= 8 else { throw DaemonError("the password needs at least 8 characters") }
        let text = try WebCredentials.make(password: password, user: user)
        try AtomicFile.write(Data(text.utf8), to: path, mode: 0o600)
        print("wrote \(path) for user \(user)")
    }
}
