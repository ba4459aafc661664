import Foundation

/// Decodes `Decodable` values from a `JSONNode` tree, rejecting fields the type never asks for.
///
/// Every keyed container records which keys the type's `init(from:)` looked at (through
/// `contains`, `decode`, `decodeIfPresent`, `decodeNil` or a nested container). Any key in the
/// object that was never looked at is reported as `unknown field "x"` with its path and line.
struct StrictTreeDecoder {
    struct Failure: Error {
        var path: [ConfigPath.Component]
        var message: String
    }

    final class Tracker {
        /// Objects that were opened as keyed containers: path, node, keys looked at.
        var objects: [(path: [ConfigPath.Component], node: JSONNode, used: Set<String>)] = []
    }

    /// Decodes and returns the value plus all unknown-field paths. Type errors throw `Failure`.
    static func decode<T: Decodable>(_ type: T.Type, from root: JSONNode) throws -> (T, [(ConfigPath, Int)]) {
        let tracker = Tracker()
        let d = TreeDecoder(node: root, path: [], tracker: tracker)
        let value: T
        do {
            value = try T(from: d)
        } catch let e as Failure {
            throw e
        } catch let e as DecodingError {
            throw convert(e)
        }
        var unknown = [(ConfigPath, Int)]()
        for obj in tracker.objects {
            guard case .object(let members) = obj.node.value else { continue }
            for m in members where !obj.used.contains(m.key) {
                unknown.append((ConfigPath(obj.path + [.key(m.key)]), m.keyLine))
            }
        }
        return (value, unknown)
    }

    static let missingField = "required field is missing"

    static func convert(_ e: DecodingError) -> Failure {
        func comps(_ path: [CodingKey]) -> [ConfigPath.Component] {
            path.map { k in k.intValue.map { .index($0) } ?? .key(k.stringValue) }
        }
        switch e {
        case .dataCorrupted(let c): return Failure(path: comps(c.codingPath), message: c.debugDescription)
        case .keyNotFound(let k, let c):
            return Failure(path: comps(c.codingPath + [k]), message: missingField)
        case .typeMismatch(_, let c): return Failure(path: comps(c.codingPath), message: c.debugDescription)
        case .valueNotFound(_, let c): return Failure(path: comps(c.codingPath), message: c.debugDescription)
        @unknown default: return Failure(path: [], message: "\(e)")
        }
    }
}

private struct AnyKey: CodingKey {
    var stringValue: String
    var intValue: Int?
    init(stringValue: String) { self.stringValue = stringValue }
    init(intValue: Int) { self.stringValue = "\(intValue)"; self.intValue = intValue }
}

private struct TreeDecoder: Decoder {
    let node: JSONNode
    let path: [ConfigPath.Component]
    let tracker: StrictTreeDecoder.Tracker
    var codingPath: [CodingKey] {
        path.map { c in
            switch c {
            case .key(let k): return AnyKey(stringValue: k)
            case .index(let i): return AnyKey(intValue: i)
            }
        }
    }
    var userInfo: [CodingUserInfoKey: Any] { [:] }

    func fail(_ message: String) -> StrictTreeDecoder.Failure {
        StrictTreeDecoder.Failure(path: path, message: message)
    }

    func container<Key: CodingKey>(keyedBy type: Key.Type) throws -> KeyedDecodingContainer<Key> {
        guard case .object(let members) = node.value else { throw fail("expected an object, found \(node.typeName)") }
        let index = tracker.objects.count
        tracker.objects.append((path, node, []))
        var dict = [String: JSONNode]()
        for m in members { dict[m.key] = m.value }
        return KeyedDecodingContainer(TreeKeyed<Key>(decoder: self, members: dict, trackerIndex: index))
    }

    func unkeyedContainer() throws -> UnkeyedDecodingContainer {
        guard case .array(let items) = node.value else { throw fail("expected an array, found \(node.typeName)") }
        return TreeUnkeyed(decoder: self, items: items)
    }

    func singleValueContainer() throws -> SingleValueDecodingContainer { TreeSingle(decoder: self) }

    func child(_ node: JSONNode, _ comp: ConfigPath.Component) -> TreeDecoder {
        TreeDecoder(node: node, path: path + [comp], tracker: tracker)
    }

    // MARK: scalars

    func decodeBool() throws -> Bool {
        guard case .bool(let b) = node.value else { throw fail("expected true or false, found \(node.typeName)") }
        return b
    }
    func decodeString() throws -> String {
        guard case .string(let s) = node.value else { throw fail("expected a string, found \(node.typeName)") }
        return s
    }
    func decodeInteger<T: FixedWidthInteger>(_: T.Type) throws -> T {
        guard case .number(let text) = node.value else { throw fail("expected an integer, found \(node.typeName)") }
        guard let v = T(text) else {
            if text.contains(where: { ".eE".contains($0) }) { throw fail("expected an integer, found \(text)") }
            throw fail("\(text) is out of range (\(T.min)...\(T.max))")
        }
        return v
    }
    func decodeDouble() throws -> Double {
        guard case .number(let text) = node.value, let v = Double(text) else {
            throw fail("expected a number, found \(node.typeName)")
        }
        return v
    }
    func decodeValue<T: Decodable>(_ type: T.Type) throws -> T {
        switch type {
        case is Bool.Type: return try decodeBool() as! T
        case is String.Type: return try decodeString() as! T
        case is Int.Type: return try decodeInteger(Int.self) as! T
        case is Int64.Type: return try decodeInteger(Int64.self) as! T
        case is Int32.Type: return try decodeInteger(Int32.self) as! T
        case is UInt.Type: return try decodeInteger(UInt.self) as! T
        case is UInt64.Type: return try decodeInteger(UInt64.self) as! T
        case is UInt32.Type: return try decodeInteger(UInt32.self) as! T
        case is UInt16.Type: return try decodeInteger(UInt16.self) as! T
        case is UInt8.Type: return try decodeInteger(UInt8.self) as! T
        case is Double.Type: return try decodeDouble() as! T
        default: return try T(from: self)
        }
    }
}

private struct TreeKeyed<Key: CodingKey>: KeyedDecodingContainerProtocol {
    let decoder: TreeDecoder
    let members: [String: JSONNode]
    let trackerIndex: Int
    var codingPath: [CodingKey] { decoder.codingPath }
    var allKeys: [Key] { members.keys.compactMap { Key(stringValue: $0) } }

    private func use(_ key: Key) { decoder.tracker.objects[trackerIndex].used.insert(key.stringValue) }

    func contains(_ key: Key) -> Bool { use(key); return members[key.stringValue] != nil }

    private func child(_ key: Key) throws -> TreeDecoder {
        use(key)
        guard let n = members[key.stringValue] else {
            throw StrictTreeDecoder.Failure(path: decoder.path + [.key(key.stringValue)], message: "required field is missing")
        }
        return decoder.child(n, .key(key.stringValue))
    }

    func decodeNil(forKey key: Key) throws -> Bool {
        use(key)
        guard let n = members[key.stringValue] else { return true }
        return n.value == .null
    }
    func decode<T: Decodable>(_ type: T.Type, forKey key: Key) throws -> T {
        let c = try child(key)
        if c.node.value == .null { throw c.fail("must not be null") }
        return try c.decodeValue(type)
    }
    func decode(_ type: Bool.Type, forKey key: Key) throws -> Bool { try child(key).decodeBool() }
    func decode(_ type: String.Type, forKey key: Key) throws -> String { try child(key).decodeString() }
    func decode(_ type: Double.Type, forKey key: Key) throws -> Double { try child(key).decodeDouble() }
    func decode(_ type: Float.Type, forKey key: Key) throws -> Float { Float(try child(key).decodeDouble()) }
    func decode(_ type: Int.Type, forKey key: Key) throws -> Int { try child(key).decodeInteger(type) }
    func decode(_ type: Int8.Type, forKey key: Key) throws -> Int8 { try child(key).decodeInteger(type) }
    func decode(_ type: Int16.Type, forKey key: Key) throws -> Int16 { try child(key).decodeInteger(type) }
    func decode(_ type: Int32.Type, forKey key: Key) throws -> Int32 { try child(key).decodeInteger(type) }
    func decode(_ type: Int64.Type, forKey key: Key) throws -> Int64 { try child(key).decodeInteger(type) }
    func decode(_ type: UInt.Type, forKey key: Key) throws -> UInt { try child(key).decodeInteger(type) }
    func decode(_ type: UInt8.Type, forKey key: Key) throws -> UInt8 { try child(key).decodeInteger(type) }
    func decode(_ type: UInt16.Type, forKey key: Key) throws -> UInt16 { try child(key).decodeInteger(type) }
    func decode(_ type: UInt32.Type, forKey key: Key) throws -> UInt32 { try child(key).decodeInteger(type) }
    func decode(_ type: UInt64.Type, forKey key: Key) throws -> UInt64 { try child(key).decodeInteger(type) }

    func nestedContainer<NestedKey: CodingKey>(keyedBy type: NestedKey.Type, forKey key: Key) throws -> KeyedDecodingContainer<NestedKey> {
        try child(key).container(keyedBy: type)
    }
    func nestedUnkeyedContainer(forKey key: Key) throws -> UnkeyedDecodingContainer { try child(key).unkeyedContainer() }
    func superDecoder() throws -> Decoder { decoder }
    func superDecoder(forKey key: Key) throws -> Decoder { try child(key) }
}

private struct TreeUnkeyed: UnkeyedDecodingContainer {
    let decoder: TreeDecoder
    let items: [JSONNode]
    var currentIndex = 0
    var codingPath: [CodingKey] { decoder.codingPath }
    var count: Int? { items.count }
    var isAtEnd: Bool { currentIndex >= items.count }

    private mutating func next() throws -> TreeDecoder {
        guard !isAtEnd else { throw decoder.fail("array has too few elements") }
        defer { currentIndex += 1 }
        return decoder.child(items[currentIndex], .index(currentIndex))
    }

    mutating func decodeNil() throws -> Bool {
        guard !isAtEnd else { return false }
        if items[currentIndex].value == .null { currentIndex += 1; return true }
        return false
    }
    mutating func decode<T: Decodable>(_ type: T.Type) throws -> T {
        let c = try next()
        if c.node.value == .null { throw c.fail("must not be null") }
        return try c.decodeValue(type)
    }
    mutating func nestedContainer<NestedKey: CodingKey>(keyedBy type: NestedKey.Type) throws -> KeyedDecodingContainer<NestedKey> {
        try next().container(keyedBy: type)
    }
    mutating func nestedUnkeyedContainer() throws -> UnkeyedDecodingContainer { try next().unkeyedContainer() }
    mutating func superDecoder() throws -> Decoder { try next() }
}

private struct TreeSingle: SingleValueDecodingContainer {
    let decoder: TreeDecoder
    var codingPath: [CodingKey] { decoder.codingPath }
    func decodeNil() -> Bool { decoder.node.value == .null }
    func decode<T: Decodable>(_ type: T.Type) throws -> T { try decoder.decodeValue(type) }
}
