import Foundation
import Testing
@testable import TargetConfig

struct SimulatedCrash: Error {}

@Suite struct StoreTests {
    @Test func saveWritesMode0600AndLoadsBack() throws {
        let dir = Fixture.tempDir()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let store = ConfigStore(path: dir + "/config.json")
        let c = try ConfigFile.decode(Fixture.exampleJSON).config
        let old = umask(0o022)
        defer { umask(old) }
        try store.save(c)
        var st = stat()
        #expect(stat(store.path, &st) == 0)
        #expect(st.st_mode & 0o777 == 0o600)
        let loaded = try store.load()
        #expect(loaded.config == c)
        #expect(!loaded.warnings.contains { $0.message.contains("file mode") })
        // No temp files left behind.
        #expect(try FileManager.default.contentsOfDirectory(atPath: dir) == ["config.json"])
    }

    @Test func crashBetweenWriteAndRenameKeepsOldFile() throws {
        let dir = Fixture.tempDir()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let path = dir + "/config.json"
        var c = try ConfigFile.decode(Fixture.exampleJSON).config
        try ConfigStore(path: path).save(c)
        let before = try Data(contentsOf: URL(fileURLWithPath: path))

        let sawTemp = TempSeen()
        let crashing = ConfigStore(path: path, hooks: AtomicWriteHooks(afterTempWrite: { tmp in
            // The new content is fully on disk in the temp file, next to the real one, mode 0600.
            var st = stat()
            sawTemp.set(stat(tmp, &st) == 0 && st.st_mode & 0o777 == 0o600 && tmp.hasPrefix(dir + "/"))
            throw SimulatedCrash()
        }))
        c.targets.removeLast()
        #expect(throws: SimulatedCrash.self) { try crashing.save(c) }
        #expect(sawTemp.value)
        #expect(try Data(contentsOf: URL(fileURLWithPath: path)) == before)
        #expect(try ConfigStore(path: path).load().config.targets.count == 2)
        #expect(try FileManager.default.contentsOfDirectory(atPath: dir) == ["config.json"])
    }

    @Test func saveRefusesInvalidConfigAndKeepsFile() throws {
        let dir = Fixture.tempDir()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let store = ConfigStore(path: dir + "/config.json")
        var c = try ConfigFile.decode(Fixture.exampleJSON).config
        try store.save(c)
        c.targets[0].luns[0].path = "relative"
        do {
            try store.save(c)
            Issue.record("save accepted an invalid configuration")
        } catch let e as ConfigError {
            #expect(e.errors.map(\.description) == ["\(dir)/config.json: targets[0].luns[0].path: must be an absolute path"])
        }
        #expect(try store.load().config.targets[0].luns[0].path == "/dev/vg0/db1")
    }

    @Test func loadWarnsAboutReadableModeAndReportsMissingFile() throws {
        let dir = Fixture.tempDir()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let path = dir + "/config.json"
        try Fixture.exampleJSON.write(to: URL(fileURLWithPath: path))
        chmod(path, 0o644)
        let loaded = try ConfigStore(path: path).load()
        #expect(loaded.warnings.first?.description == "\(path): warning: (root): file mode is 644; it holds CHAP secrets and should be 600")
        #expect(throws: ConfigIOError.self) { try ConfigStore(path: dir + "/missing.json").load() }
    }

    @Test func loadErrorsNameTheFile() throws {
        let dir = Fixture.tempDir()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let path = dir + "/config.json"
        try Data(Fixture.minimal(lunExtra: "\n          \"sizee\": 1,").utf8).write(to: URL(fileURLWithPath: path))
        do {
            _ = try ConfigStore(path: path).load()
            Issue.record("loaded a file with an unknown field")
        } catch let e as ConfigError {
            #expect(e.description == "\(path):11: targets[0].luns[0].sizee: unknown field \"sizee\"")
        }
    }
}

final class TempSeen: @unchecked Sendable {
    private let lock = NSLock()
    private var v = false
    func set(_ x: Bool) { lock.lock(); v = x; lock.unlock() }
    var value: Bool { lock.lock(); defer { lock.unlock() }; return v }
}
