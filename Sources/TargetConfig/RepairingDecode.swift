/// Decoding that goes on past a type error, so one pass reports every problem in the file.
///
/// `Decodable` stops at the first value of the wrong type. Here each failure is noted, the
/// value that failed is taken out of a copy of the tree (or, when a required field is what is
/// missing, the object that needs it), and decoding starts again. What is decoded in the end
/// is validated as usual. Paths are reported as they are in the file: removing an array element
/// shifts the indices after it in the copy, and `RemovedElements` maps them back.
struct RepairingDecode {
    var typeErrors: [(path: [ConfigPath.Component], message: String, line: Int)] = []
    var config: Config?
    var unknown: [(ConfigPath, Int)] = []
    /// Where values were taken out (file paths): diagnostics inside them, or about the
    /// container that lost them, would only repeat the type error.
    var removed: [[ConfigPath.Component]] = []
    private var elements = RemovedElements()

    /// A bound on repairs, so a file of nothing but wrong values still ends.
    static let maximumRepairs = 200

    init(_ tree: JSONNode) {
        var working = tree
        for _ in 0..<Self.maximumRepairs {
            do {
                let (value, unknownFields) = try StrictTreeDecoder.decode(Config.self, from: working)
                config = value
                unknown = unknownFields.map { (ConfigPath(elements.original($0.0.components)), $0.1) }
                return
            } catch let failure as StrictTreeDecoder.Failure {
                let line = working.locate(failure.path).line
                let filePath = elements.original(failure.path)
                // A required value taken out for its type is missing now: said once.
                if !(failure.message == StrictTreeDecoder.missingField && removed.contains(filePath)) {
                    typeErrors.append((filePath, failure.message, line))
                }
                // A missing required field: the object that needs it goes; otherwise the value.
                var cut = failure.path
                if failure.message == StrictTreeDecoder.missingField { cut.removeLast() }
                guard !cut.isEmpty, let next = working.removing(cut) else { return }
                removed.append(elements.original(cut))
                elements.note(cut)
                working = next
            } catch {
                typeErrors.append(([], "\(error)", tree.line))
                return
            }
        }
    }

    /// `path` (of the decoded configuration) as it is in the file.
    func original(_ path: [ConfigPath.Component]) -> [ConfigPath.Component] { elements.original(path) }

    /// Whether a validation diagnostic at `path` (a file path) follows from a removal.
    func followsFromRemoval(_ path: [ConfigPath.Component]) -> Bool {
        removed.contains { cut in path.starts(with: cut) || path == Array(cut.dropLast()) }
    }
}

/// Array elements taken out of the working tree, by the array's path in the file.
struct RemovedElements {
    private var byArray: [[ConfigPath.Component]: [Int]] = [:]

    /// Records the removal of the element at `workingPath` (its last component an index).
    mutating func note(_ workingPath: [ConfigPath.Component]) {
        guard case .index(let i)? = workingPath.last else { return }
        let array = original(Array(workingPath.dropLast()))
        byArray[array, default: []].append(fileIndex(i, in: array))
    }

    func original(_ workingPath: [ConfigPath.Component]) -> [ConfigPath.Component] {
        var out: [ConfigPath.Component] = []
        for c in workingPath {
            if case .index(let i) = c { out.append(.index(fileIndex(i, in: out))) } else { out.append(c) }
        }
        return out
    }

    /// The file's index of the element now at `i` of the array at `array` (a file path).
    private func fileIndex(_ i: Int, in array: [ConfigPath.Component]) -> Int {
        var index = i
        for r in (byArray[array] ?? []).sorted() where r <= index { index += 1 }
        return index
    }
}

extension JSONNode {
    /// A copy without the member or element at `path`; nil when there is none.
    func removing(_ path: [ConfigPath.Component]) -> JSONNode? {
        guard let first = path.first else { return nil }
        var copy = self
        let rest = Array(path.dropFirst())
        switch (first, value) {
        case let (.key(k), .object(members)):
            guard let at = members.firstIndex(where: { $0.key == k }) else { return nil }
            var members = members
            if rest.isEmpty {
                members.remove(at: at)
            } else {
                guard let child = members[at].value.removing(rest) else { return nil }
                members[at].value = child
            }
            copy.value = .object(members)
        case let (.index(i), .array(items)):
            guard items.indices.contains(i) else { return nil }
            var items = items
            if rest.isEmpty {
                items.remove(at: i)
            } else {
                guard let child = items[i].removing(rest) else { return nil }
                items[i] = child
            }
            copy.value = .array(items)
        default:
            return nil
        }
        return copy
    }
}
