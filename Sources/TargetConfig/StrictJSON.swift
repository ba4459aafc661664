import Foundation

/// Decodes one JSON value the way the configuration file is read: duplicate keys, type
/// errors and fields the type never reads are all errors (a mistyped field in an API request
/// must not be silently ignored). For request bodies of the admin API.
public enum StrictJSON {
    public struct Failure: Error, Sendable, CustomStringConvertible {
        /// Every problem, `field.path: message`.
        public var problems: [String]
        public var description: String { problems.joined(separator: "; ") }
    }

    public static func decode<T: Decodable>(_ type: T.Type, from data: Data) throws(Failure) -> T {
        let tree: JSONNode
        do { tree = try JSONTreeParser.parse(data) } catch {
            throw Failure(problems: ["invalid JSON at line \(error.line), column \(error.column): \(error.message)"])
        }
        do {
            let (value, unknown) = try StrictTreeDecoder.decode(type, from: tree)
            guard unknown.isEmpty else {
                throw Failure(problems: unknown.map { path, _ in "\(path): unknown field" })
            }
            return value
        } catch let f as Failure {
            throw f
        } catch let f as StrictTreeDecoder.Failure {
            let path = ConfigPath(f.path).description
            throw Failure(problems: [path.isEmpty ? f.message : "\(path): \(f.message)"])
        } catch {
            throw Failure(problems: ["\(error)"])
        }
    }
}
