import Foundation
import TargetConfig

/// Problems found in a submitted form before anything is sent to the backend.
struct FormProblems: Error, Sendable {
    var messages: [String]
    init(_ messages: [String]) { self.messages = messages }
    init(_ m: String) { self.messages = [m] }
}

/// The CHAP user list editor used by the target, default and discovery forms.
///
/// Field names (with a prefix `p`): `p_count` rows; per row `p_user_N`, `p_secret_N`,
/// `p_orig_N` (the user name the row had when rendered, to keep its secret) and `p_del_N`;
/// `p_out_user`, `p_out_secret`. Secrets are never rendered: an empty secret field keeps the
/// stored secret of the row's original user ("(unchanged)").
enum AuthEditor {
    static func render(prefix p: String, current: AuthSettings?, form: FormData?, blankRows: Int = 2) -> String {
        let old = current ?? .noAuth
        let oldUsers = Set(old.incomingUsers.map(\.user))
        var rows: [(user: String, orig: String, del: Bool)] = []
        if let form, form.has("\(p)_count") {
            let n = min(Int(form.text("\(p)_count")) ?? 0, 200)
            for i in 0..<n {
                rows.append((form.text("\(p)_user_\(i)"), form.text("\(p)_orig_\(i)"), form.has("\(p)_del_\(i)")))
            }
        } else {
            rows = old.incomingUsers.map { ($0.user, $0.user, false) }
            rows += Array(repeating: ("", "", false), count: blankRows)
        }
        var s = "<table class=\"users\"><tr><th>Incoming user (initiator's CHAP name)</th><th>Secret</th><th>Delete</th></tr>"
        for (i, r) in rows.enumerated() {
            let keeps = !r.orig.isEmpty && oldUsers.contains(r.orig)
            s += "<tr><td>\(textInput("\(p)_user_\(i)", r.user))"
            s += "<input type=\"hidden\" name=\"\(p)_orig_\(i)\" value=\"\(h(keeps ? r.orig : ""))\"></td>"
            s += "<td>\(secretInput("\(p)_secret_\(i)", placeholder: keeps ? "(unchanged)" : "secret"))</td>"
            s += "<td>" + (keeps ? "<input type=\"checkbox\" name=\"\(p)_del_\(i)\" value=\"1\"\(checked(r.del))>" : "") + "</td></tr>"
        }
        s += "</table><input type=\"hidden\" name=\"\(p)_count\" value=\"\(rows.count)\">"
        s += "<p class=\"muted\">No incoming users means no authentication. An empty secret keeps the stored one. "
        s += "Microsoft's initiator needs secrets of 12 to 16 characters.</p>"
        let outUser = form.map { $0.has("\(p)_out_user") ? $0.text("\(p)_out_user") : (old.outgoingUser?.user ?? "") }
            ?? (old.outgoingUser?.user ?? "")
        s += "<p><label for=\"\(p)_out_user\">Outgoing user (target's name for mutual CHAP; empty = none)</label>"
        s += textInput("\(p)_out_user", outUser)
        s += " <label for=\"\(p)_out_secret\">secret</label>"
        s += secretInput("\(p)_out_secret", placeholder: old.outgoingUser != nil ? "(unchanged)" : "secret") + "</p>"
        return s
    }

    /// True when new users or secrets were typed in (rows that still show a stored user unchanged
    /// do not count), e.g. to catch users entered while "use the defaults" is selected.
    static func hasEntries(prefix p: String, form: FormData, old: AuthSettings?) -> Bool {
        let n = min(Int(form.text("\(p)_count")) ?? 0, 200)
        for i in 0..<n where !form.has("\(p)_del_\(i)") {
            let user = form.text("\(p)_user_\(i)")
            if !(form["\(p)_secret_\(i)"] ?? "").isEmpty { return true }
            if !user.isEmpty && user != form.text("\(p)_orig_\(i)") { return true }
        }
        let outUser = form.text("\(p)_out_user")
        if !(form["\(p)_out_secret"] ?? "").isEmpty { return true }
        return !outUser.isEmpty && outUser != old?.outgoingUser?.user
    }

    /// Builds the settings from the form; `old` supplies the secrets of unchanged rows.
    static func parse(prefix p: String, form: FormData, old: AuthSettings?) throws(FormProblems) -> AuthSettings {
        let old = old ?? .noAuth
        var problems: [String] = []
        var users: [CHAPCredential] = []
        let n = min(Int(form.text("\(p)_count")) ?? 0, 200)
        for i in 0..<n {
            let user = form.text("\(p)_user_\(i)")
            let secret = form["\(p)_secret_\(i)"] ?? ""
            let orig = form.text("\(p)_orig_\(i)")
            if form.has("\(p)_del_\(i)") { continue }
            if user.isEmpty {
                if !secret.isEmpty { problems.append("Incoming user row \(i + 1): a secret was given without a user name") }
                continue
            }
            if user.contains(where: \.isWhitespace) { problems.append("Incoming user \(user): no whitespace allowed") }
            if !secret.isEmpty {
                users.append(CHAPCredential(user: user, secret: secret))
            } else if !orig.isEmpty, let kept = old.incomingUsers.first(where: { $0.user == orig }) {
                users.append(CHAPCredential(user: user, secret: kept.secret))
            } else {
                problems.append("Incoming user \(user): a secret is required")
            }
        }
        var outgoing: CHAPCredential?
        let outUser = form.text("\(p)_out_user")
        let outSecret = form["\(p)_out_secret"] ?? ""
        if outUser.isEmpty {
            if !outSecret.isEmpty { problems.append("Outgoing user: a secret was given without a user name") }
        } else if outUser.contains(where: \.isWhitespace) {
            problems.append("Outgoing user \(outUser): no whitespace allowed")
        } else if !outSecret.isEmpty {
            outgoing = CHAPCredential(user: outUser, secret: outSecret)
        } else if let o = old.outgoingUser {
            outgoing = CHAPCredential(user: outUser, secret: o.secret)
        } else {
            problems.append("Outgoing user \(outUser): a secret is required")
        }
        if outgoing != nil && users.isEmpty {
            problems.append("An outgoing user (mutual CHAP) needs at least one incoming user")
        }
        if !problems.isEmpty { throw FormProblems(problems) }
        let mode: AuthMode = users.isEmpty ? .none : (outgoing == nil ? .chap : .mutualCHAP)
        return AuthSettings(mode: mode, incomingUsers: users, outgoingUser: outgoing)
    }
}
