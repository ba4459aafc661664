import Foundation

/// Manual pages (man(7) roff) made from a program's own help (`--experimental-dump-help`),
/// so they always describe the binary installed beside them.
enum ManualPage {
    /// What ArgumentParser's help dump holds (the parts a manual shows).
    struct Dump: Decodable {
        var command: Command
    }

    struct Command: Decodable {
        var commandName: String
        var abstract: String?
        var discussion: String?
        var arguments: [Argument]?
        var subcommands: [Command]?
        var shouldDisplay: Bool?
    }

    struct Argument: Decodable {
        struct Name: Decodable {
            var kind: String
            var name: String
        }
        var names: [Name]?
        var valueName: String?
        var abstract: String?
        var discussion: String?
        var defaultValue: String?
        var isOptional: Bool?
        var kind: String
        var shouldDisplay: Bool?
    }

    /// The page for `program` (its help dump as JSON).
    static func render(_ json: Data, section: Int = 8, date: Date = Date(), version: String,
                       exitStatus: [(String, String)], files: [(String, String)], seeAlso: [String]) throws -> String {
        let root = try JSONDecoder().decode(Dump.self, from: json).command
        let name = root.commandName
        let day = ISO8601DateFormatter.string(from: date, timeZone: TimeZone(identifier: "UTC")!, formatOptions: [.withFullDate])
        var out = ".TH \(quoted(name.uppercased())) \(section) \(quoted(day)) \(quoted("SwiftTarget \(version)")) \(quoted("System Administration"))\n"
        out += ".SH NAME\n\(escape(name)) \\- \(escape(root.abstract ?? ""))\n"
        out += ".SH SYNOPSIS\n.B \(escape(name))\n"
        out += (root.subcommands?.isEmpty == false) ? ".I command\n[\\fIoptions\\fR]\n" : "[\\fIoptions\\fR]\n"
        if let d = root.discussion, !d.isEmpty { out += ".SH DESCRIPTION\n" + paragraphs(d) }
        if let args = root.arguments?.filter({ $0.shouldDisplay != false }), !args.isEmpty {
            out += ".SH OPTIONS\n" + args.map(argument).joined()
        }
        let commands = (root.subcommands ?? []).filter { $0.shouldDisplay != false }
        if !commands.isEmpty {
            out += ".SH COMMANDS\n"
            for c in commands {
                out += ".SS \(escape(name)) \(escape(c.commandName))\n" + escape(c.abstract ?? "") + "\n"
                if let d = c.discussion, !d.isEmpty { out += ".PP\n" + paragraphs(d) }
                let args = (c.arguments ?? []).filter { $0.shouldDisplay != false && $0.names?.contains { $0.name == "help" } != true }
                if !args.isEmpty { out += ".RS\n" + args.map(argument).joined() + ".RE\n" }
            }
        }
        if !exitStatus.isEmpty {
            out += ".SH EXIT STATUS\n" + exitStatus.map { ".TP\n.B \(escape($0.0))\n\(escape($0.1))\n" }.joined()
        }
        if !files.isEmpty { out += ".SH FILES\n" + files.map { ".TP\n.I \(escape($0.0))\n\(escape($0.1))\n" }.joined() }
        if !seeAlso.isEmpty { out += ".SH SEE ALSO\n" + seeAlso.map { "\\fB\(escape($0))\\fR" }.joined(separator: ",\n") + "\n" }
        return out
    }

    private static func argument(_ a: Argument) -> String {
        var label: String
        let names = (a.names ?? []).map { $0.kind == "short" ? "-\($0.name)" : "--\($0.name)" }
        switch a.kind {
        case "positional": label = "\\fI\(escape(a.valueName ?? "value"))\\fR"
        case "flag": label = names.map { "\\fB\(escape($0))\\fR" }.joined(separator: ", ")
        default:
            label = names.map { "\\fB\(escape($0))\\fR" }.joined(separator: ", ") + " \\fI\(escape(a.valueName ?? "value"))\\fR"
        }
        var text = escape(a.abstract ?? "")
        if let d = a.defaultValue, !d.isEmpty, a.kind != "flag" { text += " (default: \(escape(d)))" }
        if let d = a.discussion, !d.isEmpty { text += "\n.br\n" + escape(d) }
        return ".TP\n\(label)\n\(text)\n"
    }

    /// Blank-line separated paragraphs; lines indented in the help text stay lines.
    private static func paragraphs(_ text: String) -> String {
        text.components(separatedBy: "\n\n").map { p in
            let lines = p.split(separator: "\n", omittingEmptySubsequences: false).map(String.init)
            if lines.contains(where: { $0.hasPrefix(" ") }) {
                return ".nf\n" + lines.map(escape).joined(separator: "\n") + "\n.fi\n"
            }
            return escape(lines.joined(separator: " ")) + "\n"
        }.joined(separator: ".PP\n")
    }

    /// roff: backslashes doubled, hyphens unbreakable minus signs where they start options,
    /// and no line starting with a control character.
    static func escape(_ s: String) -> String {
        var t = s.replacingOccurrences(of: "\\", with: "\\e").replacingOccurrences(of: "-", with: "\\-")
        if t.hasPrefix(".") || t.hasPrefix("'") { t = "\\&" + t }
        return t.replacingOccurrences(of: "\n.", with: "\n\\&.").replacingOccurrences(of: "\n'", with: "\n\\&'")
    }

    private static func quoted(_ s: String) -> String { "\"" + s.replacingOccurrences(of: "\"", with: "'") + "\"" }
}
