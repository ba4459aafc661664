import AdminCore
import Foundation
import TargetConfig

/// HTML-escapes text for element content and quoted attribute values.
func h(_ s: String) -> String {
    var out = ""
    out.reserveCapacity(s.utf8.count)
    for c in s.unicodeScalars {
        switch c {
        case "&": out += "&amp;"
        case "<": out += "&lt;"
        case ">": out += "&gt;"
        case "\"": out += "&quot;"
        case "'": out += "&#39;"
        default: out.unicodeScalars.append(c)
        }
    }
    return out
}

/// Percent-encodes a query parameter value.
func q(_ s: String) -> String {
    var allowed = CharacterSet.alphanumerics
    allowed.insert(charactersIn: "-._~")
    return s.addingPercentEncoding(withAllowedCharacters: allowed) ?? ""
}

/// A decoded `application/x-www-form-urlencoded` body (or query), order and repeats kept.
struct FormData: Sendable {
    var pairs: [(String, String)]

    init(pairs: [(String, String)] = []) { self.pairs = pairs }

    init(urlEncoded text: String) {
        pairs = text.split(separator: "&", omittingEmptySubsequences: true).map { part in
            let kv = part.split(separator: "=", maxSplits: 1, omittingEmptySubsequences: false)
            func dec(_ s: Substring) -> String {
                String(s).replacingOccurrences(of: "+", with: " ").removingPercentEncoding ?? ""
            }
            return (dec(kv[0]), kv.count > 1 ? dec(kv[1]) : "")
        }
    }

    subscript(_ name: String) -> String? { pairs.first { $0.0 == name }?.1 }
    func all(_ name: String) -> [String] { pairs.filter { $0.0 == name }.map(\.1) }
    func has(_ name: String) -> Bool { pairs.contains { $0.0 == name } }
    /// Trimmed value, empty when missing.
    func text(_ name: String) -> String { (self[name] ?? "").trimmingCharacters(in: .whitespacesAndNewlines) }
}

/// What a page shows above its form: an error, a success note, an apply report.
struct Notice: Sendable {
    var errors: [String] = []
    var info: [String] = []
    var report: ApplyReport?

    static func error(_ m: String) -> Notice { Notice(errors: [m]) }
    static func applied(_ r: ApplyReport, _ m: String? = nil) -> Notice { Notice(info: m.map { [$0] } ?? [], report: r) }

    var html: String {
        var s = ""
        if !errors.isEmpty {
            s += "<div class=\"err\" role=\"alert\"><strong>Not saved:</strong><ul>"
            for e in errors { s += "<li>\(h(e))</li>" }
            s += "</ul></div>"
        }
        for i in info { s += "<p class=\"ok\">\(h(i))</p>" }
        if let r = report { s += renderReport(r) }
        return s
    }
}

func applyModeLabel(_ raw: String) -> String {
    switch ApplyMode(rawValue: raw) {
    case .immediate: return "applies now"
    case .newLogins: return "applies to new logins"
    case .targetRestart: return "needs a target restart"
    case nil: return raw
    }
}

func applyModeBadge(_ key: SettingKey) -> String {
    let m = key.applyMode
    return "<span class=\"mode mode-\(m.rawValue)\">\(h(applyModeLabel(m.rawValue)))</span>"
}

func renderReport(_ r: ApplyReport) -> String {
    var s = "<div class=\"report\"><h3>Applied</h3>"
    if r.effects.isEmpty {
        s += "<p>Saved; nothing changed.</p>"
    } else {
        s += "<table><tr><th>Setting</th><th>Target</th><th>LUN</th><th>Takes effect</th><th>Outcome</th></tr>"
        for e in r.effects {
            s += "<tr><td>\(h(e.setting))</td><td>\(h(e.target ?? "global"))</td><td>\(e.lun.map(String.init) ?? "")</td>"
            s += "<td>\(h(applyModeLabel(e.applyMode)))</td><td>\(h(e.outcome))</td></tr>"
        }
        s += "</table>"
    }
    if !r.warnings.isEmpty {
        s += "<p>Warnings:</p><ul class=\"warn\">"
        for w in r.warnings { s += "<li>\(h(w))</li>" }
        s += "</ul>"
    }
    return s + "</div>"
}

/// Text of an error for the admin: AdminError and ConfigError messages as they are.
func message(of error: any Error) -> [String] {
    if let a = error as? AdminError { return a.message.split(separator: "\n").map(String.init) }
    if let c = error as? ConfigError { return c.errors.map(\.description) }
    return ["\(error)"]
}

let css = """
    body{font-family:system-ui,sans-serif;margin:0;color:#222;background:#fafafa}
    header{background:#234;color:#fff;padding:.5em 1em;display:flex;flex-wrap:wrap;align-items:center;gap:1em}
    header a{color:#fff;text-decoration:none}header a:hover{text-decoration:underline}
    header form{margin-left:auto}main{padding:1em 1.5em}
    table{border-collapse:collapse;margin:.5em 0}td,th{border:1px solid #ccc;padding:.25em .5em;text-align:left;vertical-align:top}
    th{background:#eee}.err{background:#fdd;border:1px solid #c00;padding:.5em;margin:.5em 0}
    .ok{background:#dfd;border:1px solid #080;padding:.5em}.report{background:#eef;border:1px solid #88a;padding:.5em;margin:.5em 0}
    .mode{font-size:.8em;padding:0 .3em;border-radius:3px;background:#ddd;white-space:nowrap}
    .mode-applies-now{background:#cfc}.mode-new-logins{background:#ffc}.mode-target-restart{background:#fcc}
    .warn li{color:#840}fieldset{margin:.5em 0;border:1px solid #bbb}label{margin-right:.5em}
    .muted{color:#777}input[type=text],input[type=password]{min-width:14em}code{background:#eee;padding:0 .2em}
    .iqn{white-space:nowrap}.state{font-weight:600;padding:0 .35em;border-radius:3px}
    .state-running{background:#cfc;color:#060}.state-stopped{background:#fcc;color:#900}.state-unknown{background:#eee;color:#555}
    #sessions td{font-size:.9em}svg.chart{margin:0 .5em .5em 0;vertical-align:top}.charts h3{font-size:1em;margin:.8em 0 .3em}
    """

/// The page frame. `csrf` nil means the visitor is not logged in (no navigation).
/// `refresh`: seconds after which the browser reloads the page by itself (no script needed).
func layout(title: String, csrf: String?, body: String, refresh: Int? = nil) -> String {
    var s = "<!DOCTYPE html><html lang=\"en\"><head><meta charset=\"utf-8\">"
    if let refresh, refresh > 0 { s += "<meta http-equiv=\"refresh\" content=\"\(refresh)\">" }
    s += "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">"
    s += "<title>\(h(title)) – SwiftTarget</title><style>\(css)</style></head><body><header><strong>SwiftTarget iSCSI Target</strong>"
    if let csrf {
        let links = [("/", "Targets"), ("/auth", "Authentication"), ("/connection", "Connection Settings"),
                     ("/timeouts", "Timeout Settings"), ("/clients", "Allowed Clients"), ("/lunmaps", "LUN Maps"), ("/servers", "Server Addresses"),
                     ("/sessions", "Sessions"), ("/statistics", "Statistics"), ("/config", "Configuration"), ("/metrics", "Metrics")]
        s += "<nav>" + links.map { "<a href=\"\($0.0)\">\(h($0.1))</a>" }.joined(separator: " · ") + "</nav>"
        s += "<form method=\"post\" action=\"/logout\">\(csrfField(csrf))<button type=\"submit\">Log out</button></form>"
    }
    s += "</header><main><h1>\(h(title))</h1>\(body)</main></body></html>"
    return s
}

func csrfField(_ token: String) -> String { "<input type=\"hidden\" name=\"csrf\" value=\"\(h(token))\">" }

func selected(_ b: Bool) -> String { b ? " selected" : "" }
func checked(_ b: Bool) -> String { b ? " checked" : "" }

func option(_ value: String, _ label: String, _ current: String) -> String {
    "<option value=\"\(h(value))\"\(selected(value == current))>\(h(label))</option>"
}

func textInput(_ name: String, _ value: String, size: Int? = nil, placeholder: String? = nil) -> String {
    var s = "<input type=\"text\" name=\"\(h(name))\" id=\"\(h(name))\" value=\"\(h(value))\""
    if let size { s += " size=\"\(size)\" style=\"min-width:0\"" }
    if let placeholder { s += " placeholder=\"\(h(placeholder))\"" }
    return s + ">"
}

/// A password input that is always rendered empty.
func secretInput(_ name: String, placeholder: String) -> String {
    "<input type=\"password\" name=\"\(h(name))\" id=\"\(h(name))\" value=\"\" autocomplete=\"new-password\" placeholder=\"\(h(placeholder))\">"
}

func digestChoice(_ list: [DigestKind]?) -> String {
    guard let list else { return "" }
    return list.map(\.rawValue).joined(separator: ",")
}

func parseDigestChoice(_ s: String) -> [DigestKind]?? {
    if s.isEmpty { return .some(nil) }
    let parts = s.split(separator: ",").map { DigestKind(rawValue: $0.trimmingCharacters(in: .whitespaces)) }
    if parts.contains(where: { $0 == nil }) || parts.isEmpty { return nil }
    return .some(parts.compactMap { $0 })
}

func digestSelect(_ name: String, _ current: String, defaultLabel: String) -> String {
    var s = "<select name=\"\(h(name))\" id=\"\(h(name))\">"
    s += option("", defaultLabel, current)
    for (v, l) in [("None", "None"), ("CRC32C", "CRC32C"), ("CRC32C,None", "CRC32C preferred, None allowed"),
                   ("None,CRC32C", "None preferred, CRC32C allowed")] {
        s += option(v, l, current)
    }
    if !current.isEmpty && !["None", "CRC32C", "CRC32C,None", "None,CRC32C"].contains(current) {
        s += option(current, current, current)
    }
    return s + "</select>"
}
