#if !FUZZING
import Foundation

/// The driver of the plain build: every seed, then `mutations` deterministic mutations of
/// them per target. No coverage feedback, but it runs anywhere (no libFuzzer, no sanitizer)
/// and replays crash files: `swift-target-fuzz pdu ci-artifacts/fuzz/pdu-crash-…`.
enum ReplayDriver {
    static let defaultCorpus = URL(fileURLWithPath: #filePath).deletingLastPathComponent()
        .appendingPathComponent("Corpus").path

    static func run(_ arguments: [String]) {
        defer { fflush(nil) }
        var targets: [FuzzTarget] = []
        var files: [String] = []
        var mutations = 1000
        var seed: UInt64 = 1
        var corpus = defaultCorpus
        var trace = false
        var i = 0
        func value() -> String {
            i += 1
            guard i < arguments.count else { usage("\(arguments[i - 1]) needs a value") }
            return arguments[i]
        }
        while i < arguments.count {
            let a = arguments[i]
            switch a {
            case "--mutations": mutations = Int(value()) ?? { usage("--mutations takes a number") }()
            case "--seed": seed = UInt64(value()) ?? { usage("--seed takes a number") }()
            case "--corpus": corpus = value()
            case "--trace": trace = true
            case "--list":
                for t in FuzzTargets.all { print(t.name) }
                return
            case "-h", "--help": usage(nil)
            case "all": targets = FuzzTargets.all
            default:
                if let t = FuzzTargets.named(a) { targets.append(t) }
                else if FileManager.default.fileExists(atPath: a) { files.append(a) }
                else { usage("unknown target or file \(a)") }
            }
            i += 1
        }
        if targets.isEmpty { targets = FuzzTargets.all }

        if !files.isEmpty {
            guard targets.count == 1 else { usage("name one target to replay files with") }
            for f in files {
                say("fuzz-replay[\(targets[0].name)]: \(f)")
                targets[0].run(read(f))
            }
            print("fuzz-replay[\(targets[0].name)]: \(files.count) files, 0 crashes")
            return
        }
        for t in targets {
            let start = ContinuousClock.now
            let seeds = corpusFiles(corpus + "/" + t.name)
            var inputs = seeds.map(read)
            if inputs.isEmpty { inputs = [[]] }
            for (n, input) in inputs.enumerated() {
                if trace { say("fuzz-replay[\(t.name)]: seed \(n) \(seeds.indices.contains(n) ? seeds[n] : "<empty>")") }
                t.run(input)
            }
            var mutator = Mutator(seed: seed ^ fnv1a(t.name), pool: inputs)
            for n in 0..<mutations {
                let input = mutator.next()
                if trace { say("fuzz-replay[\(t.name)]: mutation \(n) (\(input.count) bytes)") }
                t.run(input)
            }
            let elapsed = ContinuousClock.now - start
            say("fuzz-replay[\(t.name)]: \(seeds.count) seeds + \(mutations) mutations, 0 crashes (\(elapsed))")
        }
    }

    /// Printed at once: the next input may crash the process.
    static func say(_ line: String) {
        print(line)
        fflush(nil)
    }

    static func usage(_ problem: String?) -> Never {
        if let problem { FileHandle.standardError.write(Data("swift-target-fuzz: \(problem)\n".utf8)) }
        let names = FuzzTargets.all.map { "  \($0.name): \($0.summary)" }.joined(separator: "\n")
        print("""
            usage: swift-target-fuzz [all|TARGET...] [--mutations N] [--seed S] [--corpus DIR] [--trace] [FILE...]
                   swift-target-fuzz --list
            targets:
            \(names)
            Runs each target's seeds (DIR/<target>/, default \(defaultCorpus)) and N mutations
            of them (default 1000, deterministic for a seed); with FILEs, runs just those.
            """)
        exit(problem == nil ? 0 : 2)
    }

    static func corpusFiles(_ dir: String) -> [String] {
        let names = (try? FileManager.default.contentsOfDirectory(atPath: dir)) ?? []
        return names.filter { !$0.hasPrefix(".") }.sorted().map { dir + "/" + $0 }
    }

    static func read(_ path: String) -> [UInt8] {
        guard let d = FileManager.default.contents(atPath: path) else { usage("cannot read \(path)") }
        return [UInt8](d)
    }

    /// A stable hash of the target name (String.hashValue is seeded per process).
    static func fnv1a(_ s: String) -> UInt64 {
        var h: UInt64 = 0xCBF2_9CE4_8422_2325
        for b in s.utf8 { h = (h ^ UInt64(b)) &* 0x100_0000_01B3 }
        return h
    }
}

/// Byte-level mutations of a seed pool, in the spirit of libFuzzer's (bit flips, interesting
/// values, insertions, deletions, copies, crossover), from a fixed seed.
struct Mutator {
    var rng: SplitMix64
    let pool: [[UInt8]]
    static let maxLength = 1 << 16
    static let interesting8: [UInt8] = [0, 1, 0x7F, 0x80, 0xFF, 0x10, 0x20, 0x40]
    static let interesting16: [UInt16] = [0, 1, 0x7FFF, 0x8000, 0xFFFF, 48, 512, 4096, 8192]
    static let interesting32: [UInt32] = [0, 1, 0x7FFF_FFFF, 0x8000_0000, 0xFFFF_FFFF, 0x0100_0000, 65536, 262_144]

    init(seed: UInt64, pool: [[UInt8]]) {
        rng = SplitMix64(seed: seed)
        self.pool = pool
    }

    mutating func below(_ n: Int) -> Int { n <= 1 ? 0 : Int(rng.next() % UInt64(n)) }

    mutating func next() -> [UInt8] {
        var b = pool[below(pool.count)]
        for _ in 0...below(4) { mutate(&b) }
        if b.count > Self.maxLength { b.removeLast(b.count - Self.maxLength) }
        return b
    }

    mutating func mutate(_ b: inout [UInt8]) {
        if b.isEmpty {
            b = (0..<1 + below(16)).map { _ in UInt8(truncatingIfNeeded: rng.next()) }
            return
        }
        let at = below(b.count)
        switch below(10) {
        case 0: b[at] ^= 1 << UInt8(below(8))
        case 1: b[at] = Self.interesting8[below(Self.interesting8.count)]
        case 2: b[at] = UInt8(truncatingIfNeeded: rng.next())
        case 3:
            let n = 1 + below(8)
            b.insert(contentsOf: (0..<n).map { _ in UInt8(truncatingIfNeeded: rng.next()) }, at: at)
        case 4: b.removeSubrange(at..<min(b.count, at + 1 + below(16)))
        case 5:
            let from = below(b.count)
            let piece = b[from..<min(b.count, from + 1 + below(64))]
            b.insert(contentsOf: piece, at: below(b.count + 1))
        case 6:
            let other = pool[below(pool.count)]
            if !other.isEmpty {
                let cut = below(other.count)
                b = Array(b[..<at]) + other[cut...]
            }
        case 7:
            guard b.count >= 2 else { return }
            let p = below(b.count - 1)
            let v = Self.interesting16[below(Self.interesting16.count)]
            b[p] = UInt8(v >> 8)
            b[p + 1] = UInt8(v & 0xFF)
        case 8:
            guard b.count >= 4 else { return }
            let p = below(b.count - 3)
            let v = Self.interesting32[below(Self.interesting32.count)]
            for k in 0..<4 { b[p + k] = UInt8(truncatingIfNeeded: v >> (24 - 8 * UInt32(k))) }
        default: b.removeLast(below(b.count))
        }
    }
}
#endif
