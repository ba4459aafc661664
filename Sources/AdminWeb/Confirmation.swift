import Hummingbird

extension AdminWebServer {
    /// A deletion is asked once more: a page naming what goes, whose "Delete" posts the
    /// `carrying` fields of this form again with confirm=yes. Works without JavaScript. Only
    /// the named fields travel, so nothing else typed into the form (a CHAP secret on the target
    /// page) is ever written back into a page. nil: confirmed already.
    func confirmation(_ page: Page, action: String, title: String, items: [String], carrying fields: [String],
                      back: String, heading: String? = nil) -> Response? {
        guard page.form.text("confirm") != "yes" else { return nil }
        var b = "<h2>\(h(heading ?? title))</h2><ul id=\"to-delete\">" + items.map { "<li>\(h($0))</li>" }.joined() + "</ul>"
        b += "<form method=\"post\" action=\"\(h(action))\">\(csrfField(page.csrf))"
        for (name, value) in page.form.pairs where fields.contains(name) {
            b += "<input type=\"hidden\" name=\"\(h(name))\" value=\"\(h(value))\">"
        }
        b += "<input type=\"hidden\" name=\"confirm\" value=\"yes\">"
        b += "<button type=\"submit\" id=\"confirm-delete\">Delete</button> <a href=\"\(h(back))\" id=\"cancel-delete\">Cancel</a></form>"
        return htmlResponse(layout(title: title, csrf: page.csrf, body: b), status: .ok)
    }
}
