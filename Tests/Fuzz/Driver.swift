// swift-target-fuzz: fuzz targets over everything that parses bytes a peer (or a file) controls.
//
// Two builds of the same sources:
// - the fuzz build (scripts/fuzz.sh): `-sanitize=fuzzer,address -DFUZZING`; main hands over to
//   libFuzzer (LLVMFuzzerRunDriver) with the target named by the first argument or by
//   $SWIFT_TARGET_FUZZ:   swift-target-fuzz pdu [libFuzzer flags] [corpus dirs]
//   (`swift-target-fuzz --list` prints the target names, one a line)
// - the plain build (swift build): a deterministic driver that runs every seed of
//   Tests/Fuzz/Corpus/<target>/ and then N mutations of them (no coverage feedback), or
//   the files given on the command line (to replay a crash without the fuzz build):
//   swift-target-fuzz [all|TARGET...] [--mutations N] [--seed S] [--corpus DIR] [--trace] [FILE...]

#if canImport(Glibc)
import Glibc
#endif

/// One fuzz target: a name (its corpus is Corpus/<name>/) and a function that must neither
/// crash nor hang on any input. Violated invariants are reported with `fuzzFailure`.
struct FuzzTarget: Sendable {
    let name: String
    let summary: String
    let run: @Sendable ([UInt8]) -> Void
}

enum FuzzTargets {
    static let all: [FuzzTarget] = [
        PDUFuzz.target,
        TextKeysFuzz.target,
        LoginFuzz.target,
        EngineFuzz.target,
        TCMURingFuzz.target,
        ConfigFuzz.target,
        IETDFuzz.target,
        SessionFuzz.target,
    ]

    static func named(_ name: String) -> FuzzTarget? { all.first { $0.name == name } }
}

/// $FUZZ_VERBOSE set: targets say what became of an input (for writing seeds).
let fuzzVerbose = getenv("FUZZ_VERBOSE") != nil

func fuzzLog(_ message: @autoclosure () -> String) {
    if fuzzVerbose {
        print(message())
        fflush(nil)
    }
}

/// An invariant of the code under test does not hold: abort so libFuzzer keeps the input.
func fuzzFailure(_ message: String, file: StaticString = #fileID, line: UInt = #line) -> Never {
    fatalError("fuzz invariant violated: \(message)", file: file, line: line)
}

@main
enum FuzzMain {
    static func main() {
        #if FUZZING
        LibFuzzerEntry.run()
        #else
        ReplayDriver.run(Array(CommandLine.arguments.dropFirst()))
        #endif
    }
}

#if FUZZING
// libFuzzer's driver. Its own main() is linked in too (-sanitize=fuzzer links the archive
// whole) but SwiftPM points `main` at this module's entry, so the driver is started here.
@_silgen_name("LLVMFuzzerRunDriver")
private func LLVMFuzzerRunDriver(
    _ argc: UnsafeMutablePointer<CInt>,
    _ argv: UnsafeMutablePointer<UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>>,
    _ callback: @convention(c) (UnsafePointer<UInt8>?, Int) -> CInt
) -> CInt

/// The target libFuzzer runs; set once before the driver starts.
nonisolated(unsafe) private var selectedTarget: FuzzTarget?

/// What libFuzzer calls per input (also referenced by libFuzzer's unused main()).
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzerTestOneInput(_ data: UnsafePointer<UInt8>?, _ size: Int) -> CInt {
    let bytes = size > 0 && data != nil ? Array(UnsafeBufferPointer(start: data, count: size)) : []
    selectedTarget!.run(bytes)
    return 0
}

enum LibFuzzerEntry {
    /// Kept for the whole run (libFuzzer keeps pointers into argv).
    nonisolated(unsafe) static var argv: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?

    static func run() {
        if CommandLine.arguments.dropFirst().first == "--list" {
            for t in FuzzTargets.all { print(t.name) }
            exit(0)
        }
        var args = Array(UnsafeBufferPointer(start: CommandLine.unsafeArgv, count: Int(CommandLine.argc)))
        var name = getenv("SWIFT_TARGET_FUZZ").map { String(cString: $0) }
        if args.count > 1, let first = args[1].map({ String(cString: $0) }), FuzzTargets.named(first) != nil {
            name = first
            args.remove(at: 1)
        }
        guard let name, let target = FuzzTargets.named(name) else {
            let names = FuzzTargets.all.map(\.name).joined(separator: ", ")
            let usage = "usage: swift-target-fuzz TARGET [libFuzzer flags] [corpus dirs]\n"
                + "       (or SWIFT_TARGET_FUZZ=TARGET); targets: \(names)\n"
            _ = usage.withCString { write(2, $0, strlen($0)) }
            exit(2)
        }
        // Child processes libFuzzer starts (-fork, -merge) get the target from the environment.
        setenv("SWIFT_TARGET_FUZZ", name, 1)
        selectedTarget = target
        let vector = UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>.allocate(capacity: args.count + 1)
        for (i, a) in args.enumerated() { vector[i] = a }
        vector[args.count] = nil
        argv = vector
        var argc = CInt(args.count)
        var argvPointer = vector
        exit(LLVMFuzzerRunDriver(&argc, &argvPointer, fuzzerTestOneInput))
    }
}
#endif
