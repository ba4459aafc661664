extension BackstoreSpec {
    /// Parses a command-line spec: `kind:path[,option…]`.
    ///
    ///     file:./disk.img,size=1G
    ///     sparse:./thin.img,size=20G
    ///     raw:/dev/loop0,direct
    ///     file:/srv/iso.img,ro
    ///
    /// Kinds: `file`, `sparse`, `raw`. Options: `size=N[K|M|G|T]` (powers of 1024, or
    /// plain bytes; a positive multiple of 512), `ro` / `readonly`, `direct`. The path
    /// ends at the first comma. Throws `BackstoreOpenError` with reason `.invalidSpec`
    /// or `.badSize`.
    public static func parse(_ text: String) throws -> BackstoreSpec {
        try parseTyped(text)
    }

    static func parseTyped(_ text: String) throws(BackstoreOpenError) -> BackstoreSpec {
        func fail(_ message: String) -> BackstoreOpenError {
            BackstoreOpenError(.invalidSpec, path: "", message: "backstore '\(text)': \(message)")
        }
        let validKinds = BackstoreKind.allCases.map(\.rawValue).joined(separator: ", ")
        guard let colon = text.firstIndex(of: ":") else {
            throw fail("expected kind:path (kinds: \(validKinds)), e.g. file:./disk.img,size=1G")
        }
        let kindText = String(text[..<colon])
        guard let kind = BackstoreKind(rawValue: kindText) else {
            throw fail("unknown kind '\(kindText)' (kinds: \(validKinds))")
        }
        let parts = text[text.index(after: colon)...].split(separator: ",", omittingEmptySubsequences: false)
        let path = parts.first.map(String.init) ?? ""
        guard !path.isEmpty else { throw fail("missing path after '\(kindText):'") }
        var spec = BackstoreSpec(kind: kind, path: path)
        if let problem = kind.locatorProblem(kind.locator == .path && !path.hasPrefix("/") ? "/" + path : path) {
            throw fail(problem)
        }
        let known = (["size="] + kind.settings.map { $0 + "=" } + ["ro", "readonly"] + kind.options).joined(separator: ", ")
        for part in parts.dropFirst() where !part.isEmpty {
            if let eq = part.firstIndex(of: "=") {
                let key = String(part[..<eq])
                let value = String(part[part.index(after: eq)...])
                if kind.settings.contains(key) {
                    guard !value.isEmpty else { throw fail("'\(key)=' needs a value") }
                    guard spec.options[key] == nil else { throw fail("'\(key)=' given twice") }
                    spec.options[key] = value
                    continue
                }
                guard key == "size" else {
                    throw fail("unknown option '\(key)' (options for \(kind.rawValue): \(known))")
                }
                do {
                    spec.size = try parseSizeTyped(value)
                } catch {
                    throw BackstoreOpenError(error.reason, path: path, message: "backstore '\(text)': \(error.message)")
                }
            } else {
                switch part {
                case "ro", "readonly": spec.readOnly = true
                case "direct" where kind.options.contains("direct"): spec.directIO = true
                case "direct": throw fail("'direct' is only supported for raw: block devices")
                default: throw fail("unknown option '\(part)' (options for \(kind.rawValue): \(known))")
                }
            }
        }
        if spec.directIO && !kind.options.contains("direct") {
            throw fail("'direct' is only supported for raw: block devices")
        }
        return spec
    }

    /// Parses `1G`, `512M`, `64K`, `2T` (powers of 1024) or plain bytes (`1048576`).
    /// The result must be a positive multiple of 512.
    public static func parseSize(_ text: String) throws -> UInt64 {
        try parseSizeTyped(text)
    }

    static func parseSizeTyped(_ text: String) throws(BackstoreOpenError) -> UInt64 {
        func fail(_ why: String) -> BackstoreOpenError {
            BackstoreOpenError(.badSize, path: "", message: "bad size '\(text)': \(why)")
        }
        var digits = Substring(text)
        var multiplier: UInt64 = 1
        if let last = digits.last, !last.isNumber {
            switch last {
            case "K", "k": multiplier = 1 << 10
            case "M", "m": multiplier = 1 << 20
            case "G", "g": multiplier = 1 << 30
            case "T", "t": multiplier = 1 << 40
            default: throw fail("unknown suffix '\(last)' (use K, M, G, T or plain bytes)")
            }
            digits = digits.dropLast()
        }
        guard !digits.isEmpty, digits.allSatisfy({ $0.isASCII && $0.isNumber }), let value = UInt64(digits) else {
            throw fail("expected a number with an optional K, M, G or T suffix")
        }
        let (bytes, overflow) = value.multipliedReportingOverflow(by: multiplier)
        guard !overflow, bytes <= UInt64(Int64.max) else { throw fail("too large") }
        guard bytes > 0 else { throw fail("must be greater than zero") }
        guard bytes % imageBlockSize != 0 ? false : true else {
            throw fail("\(bytes) bytes is not a multiple of \(imageBlockSize)")
        }
        return bytes
    }
}
