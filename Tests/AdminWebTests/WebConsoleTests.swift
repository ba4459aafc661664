import AdminCore
import Foundation
import Hummingbird
import HummingbirdTesting
import TargetConfig
import Testing

@testable import AdminWeb

let tName = "iqn.2026-01.com.example:disk1"

func sampleConfig() -> Config {
    var c = Config(portals: [Portal(address: "127.0.0.1", port: 3260), Portal(address: "127.0.0.2", port: 3260)])
    c.discoveryAuth = AuthSettings(mode: .chap, incomingUsers: [CHAPCredential(user: "disc", secret: "TOPSECRET-discovery")])
    c.defaults.auth = AuthSettings(mode: .chap, incomingUsers: [CHAPCredential(user: "defuser", secret: "TOPSECRET-default")])
    c.targets = [Target(
        name: tName, alias: "first",
        luns: [LUN(id: 0, backstore: .file, path: "/srv/disk1.img", size: 64 << 20)],
        auth: AuthSettings(mode: .mutualCHAP,
                           incomingUsers: [CHAPCredential(user: "alice", secret: "TOPSECRET-alice"),
                                           CHAPCredential(user: "bob", secret: "TOPSECRET-bob12")],
                           outgoingUser: CHAPCredential(user: "tgt", secret: "TOPSECRET-outgoing")))]
    return c
}

@Suite struct LoginAndCSRF {
    @Test func pagesRequireLogin() async throws {
        let backend = FakeBackend(config: sampleConfig())
        try await withServer(backend) { client in
            let anon = Browser(client)
            for path in ["/", "/target?name=\(tName)", "/auth", "/connection", "/timeouts", "/clients", "/lunmaps", "/servers",
                         "/sessions", "/statistics", "/config", "/targets/new"] {
                let r = try await anon.get(path)
                #expect(r.status == .seeOther, "\(path)")
                #expect(r.headers[.location] == "/login", "\(path)")
            }
            let post = try await anon.postRaw("/targets/delete", ["sel": tName])
            #expect(post.status == .seeOther)
            let login = try await anon.get("/login")
            #expect(login.status == .ok)
            #expect(login.text.contains("type=\"password\""))
        }
        #expect(await backend.updateCount == 0)
    }

    @Test func wrongPasswordIsRefusedAndRightOneSetsAStrictCookie() async throws {
        try await withServer(FakeBackend()) { client in
            let anon = Browser(client)
            // Without the login form's token (login CSRF): refused even with the right password.
            let forged = try await anon.postRaw("/login", ["user": "admin", "password": testPassword])
            #expect(forged.status == .forbidden)
            #expect(!forged.headers[values: .setCookie].contains { $0.hasPrefix("swifttarget_session=") })
            let bad = try await anon.login(password: "wrong")
            #expect(bad.status == .unauthorized)
            #expect(!bad.headers[values: .setCookie].contains { $0.hasPrefix("swifttarget_session=") })
            #expect(bad.text.contains("Wrong user name or password"))
            let badUser = try await anon.login(user: "root", password: testPassword)
            #expect(badUser.status == .unauthorized)
            let good = try await anon.login(password: testPassword)
            #expect(good.status == .seeOther)
            let cookie = try #require(good.headers[values: .setCookie].first { $0.hasPrefix("swifttarget_session=") })
            #expect(cookie.hasPrefix("swifttarget_session="))
            #expect(cookie.contains("HttpOnly"))
            #expect(cookie.contains("SameSite=Strict"))
            #expect(cookie.contains("Max-Age="))
            let value = cookie.split(separator: ";")[0].split(separator: "=", maxSplits: 1)[1]
            #expect(value.count >= 43)  // 32 random bytes, base64url
        }
    }

    @Test func lockoutAfterRepeatedFailures() async throws {
        try await withServer(FakeBackend()) { client in
            let anon = Browser(client)
            for _ in 0..<3 { _ = try await anon.login(password: "nope") }
            let locked = try await anon.login(password: testPassword)
            #expect(locked.status == .tooManyRequests)
            #expect(!locked.headers[values: .setCookie].contains { $0.hasPrefix("swifttarget_session=") })
        }
    }

    @Test func csrfTokenMissingOrWrongIs403() async throws {
        let backend = FakeBackend(config: sampleConfig())
        try await withServer(backend) { client in
            let b = try await Browser.loggedIn(client)
            let missing = try await b.postPairs("/targets/delete", [("sel", tName), ("confirm", "yes")])
            #expect(missing.status == .forbidden)
            // Differs from the token in its first character (a fixed "x" matched 1 token in 64).
            let wrongToken = (b.csrf.first == "x" ? "y" : "x") + b.csrf.dropFirst()
            let wrong = try await b.postPairs("/targets/delete", [("csrf", wrongToken), ("sel", tName), ("confirm", "yes")])
            #expect(wrong.status == .forbidden)
            let svc = try await b.postPairs("/service", [("op", "stop")])
            #expect(svc.status == .forbidden)
            let logout = try await b.postPairs("/logout", [])
            #expect(logout.status == .forbidden)
        }
        #expect(await backend.updateCount == 0)
        #expect(await backend.controls.isEmpty)
        #expect(await backend.config.targets.count == 1)
    }

    @Test func everyFormCarriesTheToken() async throws {
        try await withServer(FakeBackend(config: sampleConfig())) { client in
            let b = try await Browser.loggedIn(client)
            for path in ["/", "/target?name=\(tName)", "/auth", "/connection", "/timeouts", "/clients", "/clients/edit",
                         "/servers", "/targets/new"] {
                let html = try await b.get(path).text
                let posts = html.components(separatedBy: "method=\"post\"").count - 1
                let tokens = html.components(separatedBy: "name=\"csrf\" value=\"\(b.csrf)\"").count - 1
                #expect(posts > 0 && posts == tokens, "\(path): \(posts) forms, \(tokens) tokens")
            }
        }
    }

    @Test func logoutEndsTheSession() async throws {
        try await withServer(FakeBackend()) { client in
            let b = try await Browser.loggedIn(client)
            let r = try await b.post("/logout", [])
            #expect(r.status == .seeOther)
            #expect(r.headers[.location] == "/login")
            let after = try await b.get("/")
            #expect(after.status == .seeOther)
        }
    }
}

@Suite struct Targets {
    @Test func listShowsTargetsWithSizesUsersAndState() async throws {
        let backend = FakeBackend(config: sampleConfig())
        await backend.set(statuses: [TargetStatus(name: tName, running: true, sessions: 2, lunSizes: [0: 64 << 20])])
        try await withServer(backend) { client in
            let b = try await Browser.loggedIn(client)
            let html = try await b.get("/").text
            #expect(html.contains(tName))
            #expect(html.contains("/srv/disk1.img"))
            #expect(html.contains("64.0 MiB"))
            #expect(html.contains("alice, bob"))
            #expect(html.contains("running"))
            #expect(html.contains(">2</a>"))
        }
    }

    @Test func addingATargetThroughTheFormCallsUpdateWithTheRightConfig() async throws {
        let backend = FakeBackend(config: Config(portals: [Portal(address: "127.0.0.1", port: 3260)]))
        try await withServer(backend) { client in
            let b = try await Browser.loggedIn(client)
            let form = try await b.get("/targets/new").text
            #expect(form.contains(".com.example.node1"))  // default prefix from the reversed host name
            #expect(form.contains("/dev/sdz1"))            // device picker
            let r = try await b.post("/targets/new", [
                ("prefix", "iqn.2026-02.org.example"), ("suffix", "vol7"), ("alias", "scratch"),
                ("new_id_0", ""), ("new_dev_0", ""), ("new_path_0", "/tmp/st/vol7.img"), ("new_kind_0", "sparse"),
                ("new_size_0", "64M"), ("new_mode_0", "wb"),
                ("new_id_1", "3"), ("new_dev_1", "/dev/sdz1"), ("new_path_1", ""), ("new_kind_1", "file"),
                ("new_size_1", ""), ("new_mode_1", "ro"),
                ("new_dev_2", ""), ("new_path_2", ""),
                ("auth_src", "own"), ("t_count", "2"), ("t_user_0", "carol"), ("t_secret_0", "carol-secret-1"),
                ("t_orig_0", ""), ("t_user_1", ""), ("t_secret_1", ""), ("t_orig_1", ""),
                ("t_out_user", ""), ("t_out_secret", ""), ("hd", "CRC32C,None"), ("dd", ""),
            ])
            #expect(r.status == .ok)
            #expect(r.text.contains("Created target iqn.2026-02.org.example:vol7"))
            #expect(r.text.contains("Applied"))
            #expect(r.text.contains("targetAdded"))
            #expect(!r.text.contains("carol-secret-1"))
        }
        let c = await backend.config
        #expect(await backend.updateCount == 1)
        let t = try #require(c.target(named: "iqn.2026-02.org.example:vol7"))
        #expect(t.alias == "scratch")
        #expect(t.luns.count == 2)
        let l0 = try #require(t.lun(0))
        #expect(l0.backstore == .sparse && l0.path == "/tmp/st/vol7.img" && l0.size == 64 << 20)
        #expect(l0.writeCache == .writeBack && !l0.readOnly)
        let l3 = try #require(t.lun(3))
        #expect(l3.backstore == .raw && l3.path == "/dev/sdz1" && l3.size == nil && l3.readOnly)
        #expect(t.auth == AuthSettings(mode: .chap, incomingUsers: [CHAPCredential(user: "carol", secret: "carol-secret-1")]))
        #expect(t.connection?.headerDigest == [.crc32c, .none])
        #expect(t.connection?.dataDigest == nil)
        #expect(!l0.serial.isEmpty && l0.serial != l3.serial)
    }

    @Test func invalidNameIsRefusedWithInputPreserved() async throws {
        let backend = FakeBackend()
        try await withServer(backend) { client in
            let b = try await Browser.loggedIn(client)
            let r = try await b.post("/targets/new", [
                ("prefix", "iqn.2026-02.org.example"), ("suffix", "Bad Name"), ("alias", "keep-me"),
                ("new_path_0", "/tmp/x.img"), ("new_size_0", "64M"), ("auth_src", "inherit"), ("t_count", "0"),
            ])
            #expect(r.status == .badRequest)
            #expect(r.text.contains("is not valid"))
            #expect(r.text.contains("value=\"keep-me\""))
            #expect(r.text.contains("value=\"/tmp/x.img\""))
        }
        #expect(await backend.updateCount == 0)
    }

    @Test func theNewTargetFormReportsEveryProblemAtOnce() async throws {
        let backend = FakeBackend()
        try await withServer(backend) { client in
            let b = try await Browser.loggedIn(client)
            let r = try await b.post("/targets/new", [
                ("prefix", "iqn.2026-02.org.example"), ("suffix", "Bad Name"),
                ("new_path_0", "/tmp/x.img"), ("new_size_0", "lots"), ("auth_src", "inherit"), ("t_count", "0"),
                ("hd", "MD5"), ("dd", ""),
            ])
            #expect(r.status == .badRequest)
            #expect(r.text.contains("is not valid"), "name")
            #expect(r.text.contains("\"lots\""), "size")
            #expect(r.text.contains("Digest must be None, CRC32C"), "digest")
        }
        #expect(await backend.updateCount == 0)
    }

    @Test func backendErrorsAreShownOnTheFormWithInputPreserved() async throws {
        let backend = FakeBackend()
        try await withServer(backend) { client in
            let b = try await Browser.loggedIn(client)
            let r = try await b.post("/targets/new", [
                ("prefix", "iqn.2026-02.org.example"), ("suffix", "rel"), ("alias", "still-here"),
                ("new_path_0", "relative.img"), ("new_size_0", "64M"), ("auth_src", "inherit"), ("t_count", "0"),
            ])
            #expect(r.status == .badRequest)
            #expect(r.text.contains("must be an absolute path"))
            #expect(r.text.contains("value=\"still-here\""))
            #expect(r.text.contains("value=\"relative.img\""))
        }
        #expect(await backend.config.targets.isEmpty)
    }

    @Test func editKeepsUnchangedSecretsRemovesLUNsAndAddsUsers() async throws {
        let backend = FakeBackend(config: sampleConfig())
        try await withServer(backend) { client in
            let b = try await Browser.loggedIn(client)
            let page = try await b.get("/target?name=\(tName)").text
            #expect(page.contains("(unchanged)"))
            let r = try await b.post("/target", [
                ("name", tName), ("alias", "renamed"), ("mode_0", "ro"), ("path_0", "/srv/disk1.img"), ("size_0", "128M"),
                ("new_path_0", "/srv/disk2.img"), ("new_size_0", "1G"), ("new_kind_0", "file"), ("new_mode_0", "wt"),
                ("auth_src", "own"), ("t_count", "4"),
                ("t_user_0", "alice"), ("t_secret_0", ""), ("t_orig_0", "alice"),
                ("t_user_1", "bob"), ("t_secret_1", ""), ("t_orig_1", "bob"), ("t_del_1", "1"),
                ("t_user_2", "dave"), ("t_secret_2", "dave-secret-99"), ("t_orig_2", ""),
                ("t_user_3", ""), ("t_secret_3", ""), ("t_orig_3", ""),
                ("t_out_user", "tgt"), ("t_out_secret", ""), ("hd", ""), ("dd", ""),
            ])
            #expect(r.status == .ok, "\(r.text)")
            #expect(r.text.contains("lunSize"))
            #expect(!r.text.contains("lunBacking"))
            let t = try #require(await backend.config.target(named: tName))
            #expect(t.alias == "renamed")
            #expect(t.lun(0)?.readOnly == true && t.lun(0)?.size == 128 << 20)
            #expect(t.lun(1)?.path == "/srv/disk2.img" && t.lun(1)?.size == 1 << 30)
            #expect(t.auth?.incomingUsers == [CHAPCredential(user: "alice", secret: "TOPSECRET-alice"),
                                              CHAPCredential(user: "dave", secret: "dave-secret-99")])
            #expect(t.auth?.outgoingUser == CHAPCredential(user: "tgt", secret: "TOPSECRET-outgoing"))
            #expect(t.auth?.mode == .mutualCHAP)
            let moved = try await b.post("/target", [("name", tName), ("path_0", "/srv/moved.img"), ("size_0", "128M"),
                                                    ("auth_src", "own"), ("t_count", "0"), ("t_out_user", "")])
            #expect(moved.status == .ok)
            #expect(moved.text.contains("lunBacking"))
            #expect(moved.text.contains("needs a target restart"))
            let badSize = try await b.post("/target", [("name", tName), ("size_0", "huge"), ("auth_src", "inherit")])
            #expect(badSize.status == .badRequest)
            #expect(badSize.text.contains("is not a size"))
        }
        #expect(await backend.config.target(named: tName)?.lun(0)?.path == "/srv/moved.img")
        #expect(await backend.config.target(named: tName)?.auth == AuthSettings())
    }

    @Test func removeLUNAndDeleteTargets() async throws {
        let backend = FakeBackend(config: sampleConfig())
        try await withServer(backend) { client in
            let b = try await Browser.loggedIn(client)
            // Users typed while "use the defaults" is selected: refused rather than silently dropped.
            let typed = try await b.post("/target", [("name", tName), ("auth_src", "inherit"), ("t_count", "3"),
                                                    ("t_user_0", "alice"), ("t_orig_0", "alice"), ("t_user_1", "bob"), ("t_orig_1", "bob"),
                                                    ("t_user_2", "eve"), ("t_secret_2", "eve-secret-1234"), ("t_orig_2", ""),
                                                    ("t_out_user", "tgt")])
            #expect(typed.status == .badRequest)
            #expect(typed.text.contains("Use these settings for this target"))
            // Stored rows left as they are do not count: switching to the defaults works.
            let r = try await b.post("/target", [("name", tName), ("remove_lun", "0"), ("auth_src", "inherit"), ("t_count", "2"),
                                                ("t_user_0", "alice"), ("t_orig_0", "alice"), ("t_user_1", "bob"), ("t_orig_1", "bob"),
                                                ("t_out_user", "tgt"), ("t_out_secret", "")])
            #expect(r.status == .ok)
            #expect(r.text.contains("lunRemoved"))
            #expect(await backend.config.targets[0].luns.isEmpty)
            #expect(await backend.config.targets[0].auth == nil)
            let none = try await b.post("/targets/delete", [])
            #expect(none.status == .badRequest)
            // First the console asks, naming the target; nothing is deleted yet.
            let asked = try await b.post("/targets/delete", [("sel", tName)])
            #expect(asked.status == .ok)
            #expect(asked.text.contains("Delete this target?") && asked.text.contains(tName) && asked.text.contains("no live sessions"))
            #expect(asked.text.contains("name=\"confirm\" value=\"yes\""))
            #expect(await backend.config.targets.count == 1)
            let d = try await b.post("/targets/delete", [("sel", tName), ("confirm", "yes")])
            #expect(d.status == .ok)
            #expect(d.text.contains("targetRemoved"))
        }
        #expect(await backend.config.targets.isEmpty)
    }

    @Test func htmlEscapingOfAMaliciousAlias() async throws {
        var c = sampleConfig()
        c.targets[0].alias = "<script>alert(\"x\")</script>&'"
        let backend = FakeBackend(config: c)
        try await withServer(backend) { client in
            let b = try await Browser.loggedIn(client)
            for path in ["/", "/target?name=\(tName)", "/config"] {
                let html = try await b.get(path).text
                #expect(!html.contains("<script>"), "\(path)")
                #expect(html.contains("&lt;script&gt;"), "\(path)")
            }
            let missing = try await b.get("/target?name=%3Cimg%20src%3Dx%3E")
            #expect(missing.status == .notFound)
            #expect(!missing.text.contains("<img"))
            #expect(missing.text.contains("&lt;img src=x&gt;"))
        }
    }

    @Test func startStopRestartCallTheBackend() async throws {
        let backend = FakeBackend(config: sampleConfig())
        try await withServer(backend) { client in
            let b = try await Browser.loggedIn(client)
            #expect(try await b.post("/service", [("op", "restart")]).status == .ok)
            #expect(try await b.post("/service", [("op", "stop \(tName)")]).status == .ok)
            let r = try await b.post("/service", [("op", "start \(tName)"), ("from", "target")])
            #expect(r.text.contains("Started target \(tName)"))
            #expect(try await b.post("/service", [("op", "explode")]).status == .badRequest)
        }
        #expect(await backend.controls == ["restart ALL", "stop \(tName)", "start \(tName)"])
    }

    @Test func serviceErrorsAreShown() async throws {
        let backend = FakeBackend(config: sampleConfig())
        await backend.setFailControl(AdminError(.failed, "port 3260 is busy"))
        try await withServer(backend) { client in
            let b = try await Browser.loggedIn(client)
            let r = try await b.post("/service", [("op", "start")])
            #expect(r.status == .internalServerError)
            #expect(r.text.contains("port 3260 is busy"))
        }
    }
}

extension FakeBackend {
    func setFailControl(_ e: AdminError?) { failControl = e }
}

@Suite struct Secrets {
    @Test func secretsNeverAppearInAnyRenderedPage() async throws {
        let backend = FakeBackend(config: sampleConfig())
        await backend.set(sessions: [SessionInfo(tsih: 1, target: tName, initiator: "iqn.1993-08.org.debian:01:abc", isid: "400001370000",
                                                 remoteAddress: "127.0.0.1", localAddress: "127.0.0.1", authenticatedUser: "alice",
                                                 headerDigest: "None", dataDigest: "None", negotiated: ["MaxBurstLength": "262144"],
                                                 commandsInFlight: 0, connectedSince: 0)])
        try await withServer(backend) { client in
            let b = try await Browser.loggedIn(client)
            var pages = ["/", "/target?name=\(tName)", "/auth", "/connection", "/connection?target=\(tName)", "/timeouts",
                         "/clients", "/clients/edit", "/servers", "/sessions", "/statistics", "/config", "/targets/new", "/metrics"]
            pages.append("/login")
            for path in pages {
                let r = try await b.get(path)
                #expect(r.status == .ok || r.status == .seeOther, "\(path)")
                #expect(!r.text.contains("TOPSECRET"), "\(path) leaks a secret")
            }
            // Pages rendered after a POST (success and error) do not echo secrets either.
            let ok = try await b.post("/auth", [("which", "discovery"), ("d_count", "1"), ("d_user_0", "disc"),
                                               ("d_secret_0", "NEWSECRET-disc1"), ("d_orig_0", "disc"), ("d_out_user", "")])
            #expect(ok.status == .ok)
            #expect(!ok.text.contains("NEWSECRET") && !ok.text.contains("TOPSECRET"))
            let bad = try await b.post("/auth", [("which", "defaults"), ("g_count", "1"), ("g_user_0", "x y"),
                                                ("g_secret_0", "NEWSECRET-bad"), ("g_orig_0", ""), ("g_out_user", "")])
            #expect(bad.status == .badRequest)
            #expect(!bad.text.contains("NEWSECRET") && !bad.text.contains("TOPSECRET"))
            #expect(bad.text.contains("no whitespace allowed"))
        }
        #expect(await backend.config.discoveryAuth.incomingUsers == [CHAPCredential(user: "disc", secret: "NEWSECRET-disc1")])
    }
}

@Suite struct SettingsPages {
    @Test func authPageSavesDefaultsKeepingSecretsAndDerivesTheMode() async throws {
        let backend = FakeBackend(config: sampleConfig())
        try await withServer(backend) { client in
            let b = try await Browser.loggedIn(client)
            let page = try await b.get("/auth").text
            #expect(page.contains("Default authentication for all targets"))
            #expect(page.contains("Discovery authentication"))
            let r = try await b.post("/auth", [("which", "defaults"), ("g_count", "2"),
                                              ("g_user_0", "defuser"), ("g_secret_0", ""), ("g_orig_0", "defuser"),
                                              ("g_user_1", ""), ("g_secret_1", ""), ("g_orig_1", ""),
                                              ("g_out_user", "target-out"), ("g_out_secret", "out-secret-123")])
            #expect(r.status == .ok)
            #expect(r.text.contains("applies to new logins"))
        }
        let a = try #require(await backend.config.defaults.auth)
        #expect(a.mode == .mutualCHAP)
        #expect(a.incomingUsers == [CHAPCredential(user: "defuser", secret: "TOPSECRET-default")])
        #expect(a.outgoingUser == CHAPCredential(user: "target-out", secret: "out-secret-123"))
    }

    @Test func newUserWithoutSecretIsRefused() async throws {
        let backend = FakeBackend(config: sampleConfig())
        try await withServer(backend) { client in
            let b = try await Browser.loggedIn(client)
            let r = try await b.post("/auth", [("which", "defaults"), ("g_count", "1"), ("g_user_0", "newbie"),
                                              ("g_secret_0", ""), ("g_orig_0", ""), ("g_out_user", "")])
            #expect(r.status == .badRequest)
            #expect(r.text.contains("newbie: a secret is required"))
            #expect(r.text.contains("value=\"newbie\""))
        }
        #expect(await backend.updateCount == 0)
    }

    @Test func connectionSettingsDefaultLeavesUnsetAndShowsApplyModes() async throws {
        let backend = FakeBackend(config: sampleConfig())
        try await withServer(backend) { client in
            let b = try await Browser.loggedIn(client)
            let page = try await b.get("/connection").text
            #expect(page.contains("Allow clients to send data after commands?"))
            #expect(page.contains("Allow clients to append data to commands?"))
            #expect(page.contains("applies to new logins"))
            let r = try await b.post("/connection", [("target", ""), ("maxSessions", "4"), ("maxRecvDataSegmentLength", "65536"),
                                                    ("initialR2T", "no"), ("immediateData", ""), ("headerDigest", "CRC32C"),
                                                    ("dataDigest", ""), ("maxBurstLength", "")])
            #expect(r.status == .ok)
            #expect(r.text.contains("maxRecvDataSegmentLength"))
            let bad = try await b.post("/connection", [("target", tName), ("maxBurstLength", "lots")])
            #expect(bad.status == .badRequest)
            #expect(bad.text.contains("is not a whole number"))
            #expect(bad.text.contains("value=\"lots\""))
            let range = try await b.post("/connection", [("target", tName), ("maxRecvDataSegmentLength", "100")])
            #expect(range.status == .badRequest)
            #expect(range.text.contains("out of range"))
            let t = try await b.post("/connection", [("target", tName), ("maxConnections", "1")])
            #expect(t.status == .ok)
        }
        let d = try #require(await backend.config.defaults.connection)
        #expect(d == ConnectionSettings(maxSessions: 4, initialR2T: false, maxRecvDataSegmentLength: 65536, headerDigest: [.crc32c]))
        #expect(await backend.config.targets[0].connection == ConnectionSettings(maxConnections: 1))
    }

    @Test func timeoutsNeverPing() async throws {
        let backend = FakeBackend(config: sampleConfig())
        try await withServer(backend) { client in
            let b = try await Browser.loggedIn(client)
            #expect(try await b.get("/timeouts").text.contains("Never ping"))
            let r = try await b.post("/timeouts", [("target", ""), ("nopNever", "1"), ("nopInInterval", "5"),
                                                  ("nopInTimeout", ""), ("loginTimeout", "20")])
            #expect(r.status == .ok)
            let t = try await b.post("/timeouts", [("target", tName), ("nopInInterval", "7"), ("nopInTimeout", "9")])
            #expect(t.status == .ok)
        }
        #expect(await backend.config.defaults.timeouts == TimeoutSettings(nopInInterval: 0, loginTimeout: 20))
        #expect(await backend.config.targets[0].timeouts == TimeoutSettings(nopInInterval: 7, nopInTimeout: 9))
    }
}

@Suite struct AllowedClients {
    func rules() -> [AccessRule] {
        [.allow(address: "10.0.0.1"), .allow(address: "10.0.0.2"), .deny(address: "10.0.0.3")]
    }

    @Test func moveUpAndDownReorder() async throws {
        var c = sampleConfig()
        c.defaults.allowedClients = rules()
        c.targets[0].allowedClients = rules()
        let backend = FakeBackend(config: c)
        try await withServer(backend) { client in
            let b = try await Browser.loggedIn(client)
            let page = try await b.get("/clients").text
            #expect(page.contains("value=\"up:2\"") && page.contains("value=\"down:0\""))
            #expect(try await b.post("/clients/action", [("scope", "ALL"), ("op", "up:2")]).status == .ok)
            #expect(await backend.config.defaults.allowedClients?.map { $0.address!.description } == ["10.0.0.1", "10.0.0.3", "10.0.0.2"])
            #expect(try await b.post("/clients/action", [("scope", "ALL"), ("op", "down:0")]).status == .ok)
            #expect(await backend.config.defaults.allowedClients?.map { $0.address!.description } == ["10.0.0.3", "10.0.0.1", "10.0.0.2"])
            #expect(try await b.post("/clients/action", [("scope", tName), ("op", "down:1")]).status == .ok)
            #expect(await backend.config.targets[0].allowedClients?.map { $0.address!.description } == ["10.0.0.1", "10.0.0.3", "10.0.0.2"])
            // Out of range: refused, nothing changes.
            #expect(try await b.post("/clients/action", [("scope", "ALL"), ("op", "up:0")]).status == .badRequest)
            #expect(try await b.post("/clients/action", [("scope", "ALL"), ("op", "down:2")]).status == .badRequest)
        }
        #expect(await backend.updateCount == 3)
    }

    @Test func addEditDeleteAndInherit() async throws {
        let backend = FakeBackend(config: sampleConfig())
        try await withServer(backend) { client in
            let b = try await Browser.loggedIn(client)
            let add = try await b.post("/clients/save", [("scope", tName), ("action", "allow"), ("addresses", "127.0.0.1/32, [2001:db8::]/32"),
                                                        ("imode", "glob"), ("initiator", "iqn.1993-08.org.debian:*"), ("comment", "lab"),
                                                        ("position", "end")])
            #expect(add.status == .ok)
            #expect(add.text.contains("allowedClients"))
            let deny = try await b.post("/clients/save", [("scope", tName), ("action", "deny"), ("addresses", "ALL"), ("imode", "glob"),
                                                         ("initiator", ""), ("comment", ""), ("position", "end")])
            #expect(deny.status == .ok)
            var rules = try #require(await backend.config.targets[0].allowedClients)
            #expect(rules.count == 3)
            #expect(rules[0] == AccessRule(.allow, initiator: "iqn.1993-08.org.debian:*", address: IPNetwork("127.0.0.1/32"), comment: "lab"))
            #expect(rules[1].address == IPNetwork("2001:db8::/32"))
            #expect(rules[2] == AccessRule(.deny))
            let editPage = try await b.get("/clients/edit?scope=\(formEncode(tName))&index=0").text
            #expect(editPage.contains("cannot be changed"))
            let edit = try await b.post("/clients/save", [("scope", tName), ("index", "0"), ("action", "allow"), ("addresses", "127.0.0.0/8"),
                                                         ("imode", "regex"), ("initiator", "iqn\\.1993-08\\..*"), ("comment", "")])
            #expect(edit.status == .ok)
            rules = try #require(await backend.config.targets[0].allowedClients)
            #expect(rules[0] == AccessRule(.allow, initiatorRegex: "iqn\\.1993-08\\..*", address: IPNetwork("127.0.0.0/8")))
            let bad = try await b.post("/clients/save", [("scope", tName), ("action", "allow"), ("addresses", "300.1.1.1"), ("imode", "glob")])
            #expect(bad.status == .badRequest)
            #expect(bad.text.contains("300.1.1.1 is not an IPv4/IPv6 address"))
            #expect(bad.text.contains("value=\"300.1.1.1\""))
            // A delete is asked once more, naming the rules; nothing goes before that.
            let ask = try await b.post("/clients/action", [("scope", tName), ("op", "delete"), ("sel", "1"), ("sel", "2")])
            #expect(ask.status == .ok && ask.text.contains("Delete 2 allowed-client rule(s)?") && ask.text.contains("id=\"confirm-delete\""))
            #expect(ask.text.contains("<li>Rule 2: ") && ask.text.contains("<li>Rule 3: "))
            #expect(await backend.config.targets[0].allowedClients?.count == 3)
            let del = try await b.post("/clients/action", [("scope", tName), ("op", "delete"), ("sel", "1"), ("sel", "2"), ("confirm", "yes")])
            #expect(del.status == .ok)
            #expect(await backend.config.targets[0].allowedClients?.count == 1)
            let inh = try await b.post("/clients/action", [("scope", tName), ("op", "inherit")])
            #expect(inh.status == .ok)
            #expect(await backend.config.targets[0].allowedClients == nil)
        }
    }

    @Test func serverAddressesAndPortals() async throws {
        let backend = FakeBackend(config: sampleConfig())
        try await withServer(backend) { client in
            let b = try await Browser.loggedIn(client)
            #expect(try await b.get("/servers").text.contains("127.0.0.2:3260"))
            let s = try await b.post("/servers", [("scope", tName), ("addresses", "127.0.0.1/32")])
            #expect(s.status == .ok)
            let p = try await b.post("/portals", [("portals", "127.0.0.1:3260\n[::1]:3261")])
            #expect(p.status == .ok)
            let bad = try await b.post("/portals", [("portals", "nowhere:99999")])
            #expect(bad.status == .badRequest)
            #expect(bad.text.contains("nowhere:99999"))
        }
        #expect(await backend.config.targets[0].allowedServerAddresses == [IPNetwork("127.0.0.1/32")!])
        #expect(await backend.config.portals == [Portal(address: "127.0.0.1", port: 3260), Portal(address: "::1", port: 3261)])
    }
}

@Suite struct LUNMapPages {
    @Test func addListAndDeleteMaps() async throws {
        var config = sampleConfig()
        config.targets[0].luns.append(LUN(id: 1, backstore: .file, path: "/srv/disk2.img", size: 64 << 20))
        let backend = FakeBackend(config: config)
        try await withServer(backend) { client in
            let b = try await Browser.loggedIn(client)
            #expect(try await b.get("/lunmaps").text.contains("No LUN maps: every initiator sees every LUN."))
            let add = try await b.post("/lunmaps/add", [("target", tName), ("initiators", "iqn.1994-05.com.redhat:web*, iqn.2026-01.x:db"),
                                                       ("luns", "0=1\r\n1=0 ro"), ("comment", "web tier"), ("position", "end")])
            #expect(add.status == .ok)
            #expect(add.text.contains("lunMaps"))
            #expect(add.text.contains("LUN 1 → LUN 0 (/srv/disk1.img) read-only"))
            #expect(await backend.config.targets[0].lunMaps == [LUNMapping(
                initiators: ["iqn.1994-05.com.redhat:web*", "iqn.2026-01.x:db"],
                luns: [MappedLUN(mappedLun: 0, lun: 1), MappedLUN(mappedLun: 1, lun: 0, readOnly: true)], comment: "web tier")])
            // A bad line and a missing LUN are refused, the form kept, nothing saved.
            let bad = try await b.post("/lunmaps/add", [("target", tName), ("initiators", "*"), ("luns", "0:1"), ("position", "end")])
            #expect(bad.status == .badRequest)
            #expect(bad.text.contains("0:1 is not MAPPED=LUN"))
            let missing = try await b.post("/lunmaps/add", [("target", tName), ("initiators", "*"), ("luns", "0=7"), ("position", "first")])
            #expect(missing.status == .badRequest)
            #expect(missing.text.contains("the target has no LUN 7"))
            #expect(await backend.config.targets[0].lunMaps?.count == 1)
            // Removing LUN 1 on the target page takes its mapping with it.
            let removed = try await b.post("/target", [("name", tName), ("alias", "first"), ("auth_src", "own"),
                                                       ("remove_lun", "1"), ("hd", ""), ("dd", "")])
            #expect(removed.status == .ok, "\(removed.text.prefix(1500))")
            #expect(await backend.config.targets[0].lunMaps?.first?.luns == [MappedLUN(mappedLun: 1, lun: 0, readOnly: true)])
            let ask = try await b.post("/lunmaps/delete", [("target", tName), ("op", "delete"), ("sel", "0")])
            #expect(ask.status == .ok && ask.text.contains("Delete 1 LUN map(s) of \(tName)?"))
            #expect(await backend.config.targets[0].lunMaps?.count == 1)
            let del = try await b.post("/lunmaps/delete", [("target", tName), ("op", "delete"), ("sel", "0"), ("confirm", "yes")])
            #expect(del.status == .ok)
            #expect(await backend.config.targets[0].lunMaps == nil)
        }
    }
}

@Suite struct RBDImagePicker {
    @Test func listsAPoolsImagesAndAddsOneAsAnRBDLUN() async throws {
        let backend = FakeBackend(config: sampleConfig())
        var options = testOptions()
        options.rbdImages = { pool, opts in
            guard pool == "vms" else { throw RBDPickerUnavailable() }
            #expect(opts == ["conf": "/etc/ceph/lab.conf"])
            return ["db01", "web01"]
        }
        try await withServer(backend, options: options) { client in
            let b = try await Browser.loggedIn(client)
            let page = try await b.get("/target?name=\(formEncode(tName))&rbd_pool=vms&rbd_conf=%2Fetc%2Fceph%2Flab.conf").text
            #expect(page.contains("value=\"rbd:vms/db01\"") && page.contains("rbd:vms/web01 (Ceph image)"))
            #expect(page.contains("id=\"rbd-picker\"") && page.contains("method=\"get\""))
            let failed = try await b.get("/target?name=\(formEncode(tName))&rbd_pool=other").text
            #expect(failed.contains("Cannot list the images of pool other"))
            let saved = try await b.post("/target", [("name", tName), ("alias", "first"), ("auth_src", "own"),
                                                     ("new_dev_0", "rbd:vms/db01"), ("new_mode_0", "wt"), ("rbd_conf", "/etc/ceph/lab.conf"),
                                                     ("hd", ""), ("dd", "")])
            #expect(saved.status == .ok, "\(saved.text.prefix(2000))")
            let lun = await backend.config.targets[0].luns.first { $0.backstore == .rbd }
            #expect(lun?.path == "vms/db01")
            #expect(lun?.options == ["conf": "/etc/ceph/lab.conf"])
        }
    }
}

@Suite struct LiveViews {
    @Test func sessionsPageAndLogout() async throws {
        let backend = FakeBackend(config: sampleConfig())
        await backend.set(sessions: [SessionInfo(tsih: 7, target: tName, initiator: "iqn.1993-08.org.debian:01:<x>", isid: "400001370000",
                                                 remoteAddress: "127.0.0.1:51000", localAddress: "127.0.0.1:3260", authenticatedUser: "alice",
                                                 headerDigest: "CRC32C", dataDigest: "None",
                                                 negotiated: ["MaxBurstLength": "262144", "InitialR2T": "Yes"],
                                                 commandsInFlight: 3, connectedSince: 1_700_000_000)])
        try await withServer(backend) { client in
            let b = try await Browser.loggedIn(client)
            let page = try await b.get("/sessions").text
            #expect(page.contains("iqn.1993-08.org.debian:01:&lt;x&gt;"))
            #expect(page.contains("MaxBurstLength=262144"))
            #expect(page.contains("CRC32C / None"))
            let r = try await b.post("/sessions/logout", [("tsih", "7")])
            #expect(r.status == .ok)
            #expect(r.text.contains("Session 7 logged out"))
            let again = try await b.post("/sessions/logout", [("tsih", "7")])
            #expect(again.status == .notFound)
        }
        #expect(await backend.loggedOut == [7])
    }

    @Test func statisticsPageComputesRatesFromTwoSamples() async throws {
        let backend = FakeBackend(config: sampleConfig())
        await backend.set(stats: [LUNStatistics(target: tName, lun: 0, readCommands: 100, bytesRead: 1_000_000,
                                                latencyBuckets: [0.001, 0.01], latencyCounts: [50, 100], latencySumSeconds: 0.3)])
        try await withServer(backend) { client in
            let b = try await Browser.loggedIn(client)
            let first = try await b.get("/statistics").text
            #expect(first.contains("<td>100</td>"))
            await backend.set(stats: [LUNStatistics(target: tName, lun: 0, readCommands: 300, bytesRead: 3_000_000,
                                                    latencyBuckets: [0.001, 0.01], latencyCounts: [150, 300], latencySumSeconds: 0.9)])
            let second = try await b.get("/statistics").text
            #expect(second.contains("<td>300</td>"))
            #expect(second.contains("3.00 ms"))  // average latency of the interval: 0.6 s / 200
            // A chart per measure, drawn from the interval sampled.
            #expect(second.components(separatedBy: "<svg class=\"chart\"").count == 4)
            #expect(second.contains("aria-label=\"IOPS\"") && second.contains("aria-label=\"p99 latency\"") && second.contains("class=\"series-read\""))
            // It reloads itself, unless asked not to.
            #expect(second.contains("<meta http-equiv=\"refresh\" content=\"5\">"))
            let still = try await b.get("/statistics?refresh=off").text
            #expect(!still.contains("http-equiv=\"refresh\"") && still.contains("id=\"auto-refresh-on\""))
        }
    }

    @Test func configPageIsRedacted() async throws {
        try await withServer(FakeBackend(config: sampleConfig())) { client in
            let b = try await Browser.loggedIn(client)
            let html = try await b.get("/config").text
            #expect(html.contains("********"))
            #expect(html.contains("alice"))
        }
    }
}

@Suite struct NotFoundAndConflicts {
    @Test func unknownObjectsAnd409() async throws {
        let backend = FakeBackend(config: sampleConfig())
        try await withServer(backend) { client in
            let b = try await Browser.loggedIn(client)
            #expect(try await b.get("/connection?target=iqn.2026-01.com.example:nope").status == .notFound)
            #expect(try await b.get("/timeouts?target=iqn.2026-01.com.example:nope").status == .notFound)
            #expect(try await b.get("/clients/edit?scope=ALL&index=3").status == .notFound)
            let dup = try await b.post("/targets/new", [("prefix", "iqn.2026-01.com.example"), ("suffix", "disk1"),
                                                       ("auth_src", "inherit"), ("t_count", "0")])
            #expect(dup.status == .conflict)
            #expect(dup.text.contains("already exists"))
            let gone = try await b.post("/target/delete", [("name", "iqn.2026-01.com.example:nope")])
            #expect(gone.status == .notFound)
            let dupLUN = try await b.post("/target", [("name", tName), ("new_id_0", "0"), ("new_path_0", "/srv/other.img"),
                                                     ("new_size_0", "1M"), ("auth_src", "inherit")])
            #expect(dupLUN.status == .badRequest)
            #expect(dupLUN.text.contains("LUN 0 already exists"))
        }
        #expect(await backend.config == sampleConfigWithoutIdentityDrift(await backend.config))
    }
}

/// The sample configuration is generated with random LUN identities; compare everything else.
func sampleConfigWithoutIdentityDrift(_ c: Config) -> Config {
    var s = sampleConfig()
    for (ti, t) in c.targets.enumerated() where ti < s.targets.count {
        for (li, l) in t.luns.enumerated() where li < s.targets[ti].luns.count {
            s.targets[ti].luns[li].serial = l.serial
            s.targets[ti].luns[li].naaId = l.naaId
        }
    }
    return s
}
