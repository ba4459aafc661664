import Hummingbird

extension AdminWebServer {
    /// A deletion from a list is asked once more: the same form, posted again with confirm=yes
    /// from a page naming what goes. Works without JavaScript. nil: confirmed already.
    func confirmation(_ page: Page, action: String, title: String, items: [String], back: String) -> Response? {
        guard page.form.text("confirm") != "yes" else { return nil }
        var b = "<h2>\(h(title))</h2><ul id=\"to-delete\">" + items.map { "<li>\(h($0))</li>" }.joined() + "</ul>"
        b += "<form method=\"post\" action=\"\(h(action))\">\(csrfField(page.csrf))"
        for (name, value) in page.form.pairs where name != "csrf" && name != "confirm" {
            b += "<input type=\"hidden\" name=\"\(h(name))\" value=\"\(h(value))\">"
        }
        b += "<input type=\"hidden\" name=\"confirm\" value=\"yes\">"
        b += "<button type=\"submit\" id=\"confirm-delete\">Delete</button> <a href=\"\(h(back))\" id=\"cancel-delete\">Cancel</a></form>"
        return htmlResponse(layout(title: title, csrf: page.csrf, body: b), status: .ok)
    }
}
