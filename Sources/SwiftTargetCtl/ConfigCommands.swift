import AdminAPI
import AdminCore
import ArgumentParser
import Foundation
import TargetConfig

struct ShowConfig: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "show-config", abstract: "Print the configuration (secrets redacted).")
    @OptionGroup var connection: Connection
    @Flag(help: "JSON output (the default).") var json = false

    func run() async throws {
        try await perform { printJSON(try await connection.client.raw(.GET, "/v1/config")) }
    }
}

struct Reload: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "reload",
        abstract: "Re-read the daemon's configuration file and apply the difference live (as SIGHUP does).",
        discussion: "A file that does not validate changes nothing; every problem is listed. Until an edit of the file is reloaded, other changes are refused (exit 4) rather than overwrite it.")
    @OptionGroup var connection: Connection

    func run() async throws {
        try await perform { printReport(try await connection.client.call(.POST, "/v1/config/reload", as: ApplyReport.self)) }
    }
}

struct SaveConfig: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "save-config",
        abstract: "Save the running configuration, CHAP secrets included, to FILE (mode 0600).",
        discussion: "An existing FILE is kept as FILE.1 (FILE.1 as FILE.2, and so on; the oldest beyond --backups is removed). restore-config FILE puts it back.")
    @OptionGroup var connection: Connection
    @Argument(help: "The file to write.") var file: String
    @Option(help: "Earlier saves kept beside FILE (0-99).") var backups = 10

    func validate() throws {
        guard (0...99).contains(backups) else { throw ValidationError("--backups must be 0…99") }
    }

    func run() async throws {
        try await perform {
            let data = try await connection.client.raw(.GET, "/v1/config/file", bodyData: nil)
            do {
                try ConfigBackups.rotate(file, keeping: backups)
                try AtomicFile.write(data, to: file, mode: 0o600)
            } catch {
                throw AdminError(.failed, "cannot write \(file): \(error)")
            }
            print("saved to \(file)\(backups > 0 ? " (earlier saves: \(file).1 … \(file).\(backups))" : "")")
        }
    }
}

struct RestoreConfig: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "restore-config",
        abstract: "Put a configuration saved with save-config (or any configuration file) in force, live.",
        discussion: "The file is validated first (every problem listed, nothing changed); then the difference to the running configuration is applied as any other change and saved to the daemon's own file.")
    @OptionGroup var connection: Connection
    @Argument(help: "The configuration file to restore.") var file: String

    func run() async throws {
        try await perform {
            let data: Data
            do { data = try Data(contentsOf: URL(fileURLWithPath: file)) } catch {
                throw AdminError(.notFound, "cannot read \(file): \(error.localizedDescription)")
            }
            // The daemon validates it under this name, so its problems cite the admin's file and lines.
            let report = try await connection.client.raw(.PUT, "/v1/config?file=\(AdminClient.segment(file))", bodyData: data)
            do { printReport(try JSONDecoder().decode(ApplyReport.self, from: report)) } catch {
                throw AdminClientError.badResponse("\(error)")
            }
        }
    }
}

/// Earlier saves beside a file: FILE.1 (the newest) … FILE.N.
enum ConfigBackups {
    static func rotate(_ file: String, keeping count: Int) throws {
        let fm = FileManager.default
        guard fm.fileExists(atPath: file) else { return }
        guard count > 0 else { return }
        if fm.fileExists(atPath: "\(file).\(count)") { try fm.removeItem(atPath: "\(file).\(count)") }
        for n in stride(from: count - 1, through: 1, by: -1) where fm.fileExists(atPath: "\(file).\(n)") {
            try fm.moveItem(atPath: "\(file).\(n)", toPath: "\(file).\(n + 1)")
        }
        try fm.moveItem(atPath: file, toPath: "\(file).1")
    }
}
