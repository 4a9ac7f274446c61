// The OpenAPI 3.1 document of the management API, written as data (no generator): every route
// and every request and response schema, including the policy schemas of
// 002_eb952a1ed75b84b3.txt with their untagged unions as `oneOf`. Served without a token at
// `/openapi/sluice-v1.json` and `/openapi/neuwerk-v1.json` (the name the spec's tooling uses).
// OpenAPIDocumentTests keeps it true: every registered route is documented, and responses of
// the main routes validate against the schemas here.
import Foundation
import Hummingbird
import NIOCore
import SluicePolicy

/// A JSON value written with Swift literals, private to this document so JSONValue itself does
/// not gain literal conformances that would leak into every module importing SluiceAPI.
struct Doc: ExpressibleByDictionaryLiteral, ExpressibleByArrayLiteral, ExpressibleByStringLiteral,
    ExpressibleByBooleanLiteral, ExpressibleByIntegerLiteral
{
    var json: JSONValue

    init(_ json: JSONValue) { self.json = json }
    init(dictionaryLiteral elements: (String, Doc)...) { json = .object(elements.map { ($0.0, $0.1.json) }) }
    init(arrayLiteral elements: Doc...) { json = .array(elements.map(\.json)) }
    init(stringLiteral value: String) { json = .string(value) }
    init(booleanLiteral value: Bool) { json = .bool(value) }
    init(integerLiteral value: Int) { json = .int(Int64(value)) }

    static func object(_ pairs: [(String, Doc)]) -> Doc { Doc(.object(pairs.map { ($0.0, $0.1.json) })) }
    static func strings(_ values: [String]) -> Doc { Doc(.array(values.map { .string($0) })) }
}

/// The document and the routes that serve it.
public enum OpenAPIDocument {
    /// The document as canonical JSON text, built once.
    public static let text: String = document.json.canonicalText

    // MARK: Schema helpers

    static func ref(_ name: String) -> Doc { ["$ref": Doc(.string("#/components/schemas/\(name)"))] }
    static let string: Doc = ["type": "string"]
    static let dateTime: Doc = ["type": "string", "format": "date-time"]
    static let boolean: Doc = ["type": "boolean"]
    static let integer: Doc = ["type": "integer"]
    static let stringList: Doc = ["type": "array", "items": ["type": "string"]]
    static func array(_ items: Doc) -> Doc { ["type": "array", "items": items] }
    static func enumeration(_ values: [String]) -> Doc { ["type": "string", "enum": Doc.strings(values)] }
    static func map(_ values: Doc) -> Doc { ["type": "object", "additionalProperties": values] }
    static func nullable(_ schema: Doc) -> Doc { ["anyOf": [schema, ["type": "null"]]] }
    static func integerRange(_ minimum: Int, _ maximum: Int) -> Doc {
        ["type": "integer", "minimum": Doc(.int(Int64(minimum))), "maximum": Doc(.int(Int64(maximum)))]
    }

    /// A closed object: the named properties, the required ones, nothing else.
    static func object(_ description: String, required: [String] = [], _ properties: [(String, Doc)]) -> Doc {
        var members: [(String, Doc)] = [
            ("type", "object"), ("description", Doc(.string(description))), ("properties", .object(properties)),
            ("additionalProperties", false),
        ]
        if !required.isEmpty { members.append(("required", .strings(required))) }
        return .object(members)
    }

    // MARK: Operation helpers

    static func json(_ schema: Doc) -> Doc { ["application/json": ["schema": schema]] }
    static func response(_ description: String, _ schema: Doc? = nil, headers: Doc? = nil) -> Doc {
        var members: [(String, Doc)] = [("description", Doc(.string(description)))]
        if let schema { members.append(("content", json(schema))) }
        if let headers { members.append(("headers", headers)) }
        return .object(members)
    }
    static func error(_ description: String) -> Doc { response(description, ref("Error")) }
    static let etagHeader: Doc = [
        "ETag": ["description": "\"<id>.<version>\"; send it back in If-Match", "schema": string],
    ]

    static func parameter(_ name: String, in place: String, _ description: String, _ schema: Doc = string,
                          required: Bool = false) -> Doc {
        .object([
            ("name", Doc(.string(name))), ("in", Doc(.string(place))), ("description", Doc(.string(description))),
            ("required", Doc(.bool(required || place == "path"))), ("schema", schema),
        ])
    }
    static let ifMatch = parameter("If-Match", in: "header", "ETag of the version being replaced (412 when stale)")

    /// One operation. `open`: no bearer token needed. Adds the error responses every route shares.
    static func operation(
        _ id: String, _ summary: String, tag: String, open: Bool = false, write: Bool = false,
        parameters: [Doc] = [], body: Doc? = nil, _ responses: [(String, Doc)]
    ) -> Doc {
        var members: [(String, Doc)] = [
            ("operationId", Doc(.string(id))), ("summary", Doc(.string(summary))), ("tags", [Doc(.string(tag))]),
        ]
        if open { members.append(("security", [])) }
        if !parameters.isEmpty { members.append(("parameters", Doc(.array(parameters.map(\.json))))) }
        if let body { members.append(("requestBody", ["required": true, "content": json(body)])) }
        var all = responses
        if !open {
            all.append(("401", error("missing, unknown or revoked token")))
            all.append(("429", error("too many failed authentications from this address (Retry-After)")))
            if write { all.append(("403", error("the token's role may only read; writes need admin"))) }
        }
        all.append(("500", error("internal error")))
        members.append(("responses", .object(all)))
        return .object(members)
    }

    // MARK: The document

    static var document: Doc {
        [
            "openapi": "3.1.0",
            "info": [
                "title": "Sluice management API",
                "version": "1",
                "description": """
                    Policies, rollout (disabled → audit → enforce), evidence (findings, DNS cache, wiretap), settings, \
                    service accounts and tokens of a Sluice egress gateway. Bearer tokens: readonly may GET, admin may \
                    write. Errors are {error, details[{path, message}]}.
                    """,
            ],
            "servers": [["url": "/"]],
            "security": [["bearer": []]],
            "paths": paths,
            "components": [
                "securitySchemes": ["bearer": ["type": "http", "scheme": "bearer"]],
                "schemas": schemas,
            ],
        ]
    }

    static var paths: Doc {
        let id = parameter("id", in: "path", "policy id")
        let name = parameter("name", in: "path", "policy name (letters, digits, '.', '_', '-')")
        let accountID = parameter("id", in: "path", "service account id")
        return .object([
            ("/health", ["get": operation("health", "The process answers", tag: "health", open: true, [
                ("200", response("alive", ref("Health"))),
            ])]),
            ("/ready", ["get": operation("ready", "Readiness with named checks", tag: "health", open: true, [
                ("200", response("ready", ref("Readiness"))), ("503", response("not ready", ref("Readiness"))),
            ])]),
            ("/openapi/sluice-v1.json", ["get": operation("openapiSluice", "This document", tag: "meta", open: true, [
                ("200", response("OpenAPI 3.1 document", ["type": "object"])),
            ])]),
            ("/openapi/neuwerk-v1.json", ["get": operation("openapiNeuwerk", "This document, by the spec's name",
                                                           tag: "meta", open: true, [
                ("200", response("OpenAPI 3.1 document", ["type": "object"])),
            ])]),
            ("/api/v1/policies", [
                "get": operation("listPolicies", "All stored policies", tag: "policies", [
                    ("200", response("policies", ref("PolicyList"))),
                ]),
                "post": operation("createPolicy", "Create a policy", tag: "policies", write: true,
                                  body: ref("OpenApiPolicyUpsertRequest"), [
                    ("201", response("created", ref("PolicyWriteResponse"), headers: etagHeader)),
                    ("400", error("invalid policy: every problem with its path")),
                    ("409", error("name already used")), ("413", error("body over 4 MiB")),
                ]),
            ]),
            ("/api/v1/policies/by-name/{name}", [
                "get": operation("getPolicyByName", "A policy by name", tag: "policies", parameters: [name], [
                    ("200", response("the policy", ref("PolicyRecord"), headers: etagHeader)),
                    ("404", error("no policy of that name")),
                ]),
                "put": operation("putPolicyByName", "Create or replace a policy by name (the rollout write)",
                                 tag: "policies", write: true, parameters: [name, ifMatch],
                                 body: ref("OpenApiPolicyUpsertRequest"), [
                    ("200", response("replaced", ref("PolicyWriteResponse"), headers: etagHeader)),
                    ("201", response("created", ref("PolicyWriteResponse"), headers: etagHeader)),
                    ("400", error("invalid policy, or body name differs from the path")),
                    ("412", error("If-Match does not match the current version")),
                    ("413", error("body over 4 MiB")),
                ]),
            ]),
            ("/api/v1/policies/{id}", [
                "get": operation("getPolicy", "A policy by id", tag: "policies", parameters: [id], [
                    ("200", response("the policy", ref("PolicyRecord"), headers: etagHeader)),
                    ("404", error("no such policy")),
                ]),
                "put": operation("putPolicy", "Replace a policy", tag: "policies", write: true,
                                 parameters: [id, ifMatch], body: ref("OpenApiPolicyUpsertRequest"), [
                    ("200", response("replaced", ref("PolicyWriteResponse"), headers: etagHeader)),
                    ("400", error("invalid policy")), ("404", error("no such policy")),
                    ("409", error("name already used")), ("412", error("stale If-Match")),
                    ("413", error("body over 4 MiB")),
                ]),
                "delete": operation("deletePolicy", "Delete a policy and its versions", tag: "policies", write: true,
                                    parameters: [id, ifMatch], [
                    ("204", response("deleted")), ("404", error("no such policy")), ("412", error("stale If-Match")),
                ]),
            ]),
            ("/api/v1/policies/{id}/versions", ["get": operation("policyVersions", "Every version of a policy",
                                                                 tag: "policies", parameters: [id], [
                ("200", response("versions, oldest first", ref("PolicyVersionList"))),
                ("404", error("no such policy")),
            ])]),
            ("/api/v1/stats", ["get": operation("stats", "Dataplane, DNS, findings and wiretap counters",
                                                tag: "operations", [
                ("200", response("stats", ref("Stats"))),
            ])]),
            ("/api/v1/settings/performance-mode", [
                "get": operation("getPerformanceMode", "Whether the event surfaces are on", tag: "operations", [
                    ("200", response("setting", ref("PerformanceMode"))),
                ]),
                "put": operation("putPerformanceMode", "Turn the event surfaces on or off", tag: "operations",
                                 write: true, body: ref("PerformanceMode"), [
                    ("200", response("new setting", ref("PerformanceMode"))), ("400", error("invalid body")),
                ]),
            ]),
            ("/api/v1/audit/findings", ["get": operation("auditFindings", "Aggregated would-be and real denies",
                                                         tag: "evidence", parameters: [
                parameter("finding_type", in: "query", "e.g. packet_deny, dns_deny, tls_deny"),
                parameter("source_group", in: "query", "source group id"),
                parameter("policy_id", in: "query", "policy id"),
                parameter("since", in: "query", "RFC 3339 time or Unix seconds (last_seen ≥)"),
                parameter("until", in: "query", "RFC 3339 time or Unix seconds (last_seen ≤)"),
                parameter("limit", in: "query", "1 to 10000, default 100", integerRange(1, 10_000)),
            ], [
                ("200", response("findings, newest first", ref("FindingList"))),
                ("400", error("invalid filter")), ("503", error("performance mode is off")),
            ])]),
            ("/api/v1/dns-cache", ["get": operation("dnsCache", "Hostnames and the addresses learned for them",
                                                    tag: "evidence", [
                ("200", response("cache", ref("DNSCache"))),
            ])]),
            ("/api/v1/wiretap/stream", ["get": operation("wiretapStream", "Live flows as Server-Sent Events",
                                                         tag: "evidence", parameters: [
                parameter("src_cidr", in: "query", "source inside this CIDR (or address)"),
                parameter("dst_cidr", in: "query", "destination inside this CIDR (or address)"),
                parameter("hostname", in: "query", "DNS name or SNI, exact or *.example.com"),
                parameter("proto", in: "query", "tcp, udp, icmp, icmpv6 or 0-255"),
                parameter("src_port", in: "query", "source port", integerRange(0, 65_535)),
                parameter("dst_port", in: "query", "destination port", integerRange(0, 65_535)),
            ], [
                ("200", [
                    "description": """
                        text/event-stream: `event: flow` and `event: flow_end` with a FlowEvent as `data`, at most one \
                        flow event per flow per second; `event: dropped` with {dropped} when this client's buffer \
                        overflowed; `: keep-alive` comments every 15 s.
                        """,
                    "content": ["text/event-stream": ["schema": ["type": "string"], "x-sse-data": ref("FlowEvent")]],
                ]),
                ("400", error("invalid filter")), ("503", error("performance mode is off")),
            ])]),
            ("/api/v1/admin-log", ["get": operation("adminLog", "Every write, newest first", tag: "operations",
                                                    parameters: [
                parameter("limit", in: "query", "1 to 10000, default 100", integerRange(1, 10_000)),
                parameter("before", in: "query", "only entries with seq below this", integer),
            ], [
                ("200", response("entries", ref("AdminLog"))), ("400", error("invalid query")),
            ])]),
            ("/api/v1/service-accounts", [
                "get": operation("listServiceAccounts", "All service accounts", tag: "auth", [
                    ("200", response("accounts", ref("ServiceAccountList"))),
                ]),
                "post": operation("createServiceAccount", "Create a service account", tag: "auth", write: true,
                                  body: ref("CreateServiceAccount"), [
                    ("201", response("created", ref("ServiceAccount"))), ("400", error("invalid body")),
                    ("409", error("name taken")),
                ]),
            ]),
            ("/api/v1/service-accounts/{id}", [
                "get": operation("getServiceAccount", "A service account", tag: "auth", parameters: [accountID], [
                    ("200", response("the account", ref("ServiceAccount"))), ("404", error("no such account")),
                ]),
                "delete": operation("disableServiceAccount", "Disable an account and revoke its tokens", tag: "auth",
                                    write: true, parameters: [accountID], [
                    ("200", response("disabled", ref("ServiceAccount"))), ("404", error("no such account")),
                    ("409", error("an account cannot disable itself")),
                ]),
            ]),
            ("/api/v1/service-accounts/{id}/tokens", [
                "get": operation("listTokens", "Tokens of an account (no secrets)", tag: "auth",
                                 parameters: [accountID], [
                    ("200", response("tokens", ref("TokenList"))), ("404", error("no such account")),
                ]),
                "post": operation("createToken", "Issue a token; its text appears only here", tag: "auth",
                                  write: true, parameters: [accountID], body: ref("CreateToken"), [
                    ("201", response("created, with `token`", ref("Token"))), ("404", error("no such account")),
                ]),
            ]),
            ("/api/v1/tokens/{id}", ["delete": operation("revokeToken", "Revoke a token", tag: "auth", write: true,
                                                         parameters: [parameter("id", in: "path", "token id")], [
                ("200", response("revoked", ref("Token"))), ("404", error("no such token")),
            ])]),
        ])
    }

    static var schemas: Doc {
        let mode = enumeration(["disabled", "audit", "enforce"])
        let ruleMode = enumeration(["audit", "enforce"])
        let action = enumeration(["allow", "deny"])
        let counters = map(["type": "integer", "minimum": 0])
        let stringMatch = object("exact and/or regex", [("exact", stringList), ("regex", string)])
        let headerMatch = object("header matchers (names case-insensitive)", [
            ("require_present", stringList), ("deny_present", stringList), ("exact", map(stringList)),
            ("regex", map(string)),
        ])
        return .object([
            // The policy schemas of 002_eb952a1ed75b84b3.txt.
            ("PolicyMode", mode),
            ("OpenApiPolicyUpsertRequest", object("The policy write envelope", required: ["mode", "policy"], [
                ("mode", ref("PolicyMode")), ("name", string), ("policy", ref("PolicyConfig")),
            ])),
            ("PolicyConfig", object("A policy", [
                ("default_policy", action), ("source_groups", array(ref("SourceGroupConfig"))),
            ])),
            ("SourceGroupConfig", object("A source population and its rules", required: ["id", "sources"], [
                ("id", string), ("priority", integerRange(Int(Int32.min), Int(Int32.max))),
                ("sources", ref("SourcesConfig")), ("rules", array(ref("RuleConfig"))), ("default_action", action),
                ("mode", ruleMode),
            ])),
            ("SourcesConfig", object("Static and Kubernetes sources (the effective set must not be empty)", [
                ("cidrs", stringList), ("ips", stringList), ("kubernetes", array(ref("KubernetesSourceConfig"))),
            ])),
            ("KubernetesSourceConfig", [
                "description": "Exactly one of pod_selector or node_selector",
                "oneOf": [
                    object("Pods", required: ["integration", "pod_selector"], [
                        ("integration", string),
                        ("pod_selector", object("Pods of a namespace", required: ["namespace"], [
                            ("namespace", string), ("match_labels", map(string)),
                        ])),
                    ]),
                    object("Nodes", required: ["integration", "node_selector"], [
                        ("integration", string),
                        ("node_selector", object("Nodes", [("match_labels", map(string))])),
                    ]),
                ],
            ]),
            ("RuleConfig", object("A rule", required: ["id", "action", "match"], [
                ("id", string), ("priority", integerRange(Int(Int32.min), Int(Int32.max))), ("action", action),
                ("mode", ruleMode), ("match", ref("RuleMatchConfig")),
            ])),
            ("RuleMatchConfig", object("L3/L4/ICMP/DNS/TLS selectors; empty lists mean any", [
                ("dst_cidrs", stringList), ("dst_ips", stringList), ("dns_hostname", string),
                ("proto", ref("ProtoValue")), ("src_ports", array(ref("PortSpec"))),
                ("dst_ports", array(ref("PortSpec"))), ("icmp_types", array(integerRange(0, 255))),
                ("icmp_codes", array(integerRange(0, 255))), ("tls", ref("TlsMatchConfig")),
            ])),
            ("ProtoValue", [
                "description": "A protocol name (tcp, udp, icmp, icmpv6, any...) or number",
                "oneOf": [string, integerRange(0, 255)],
            ]),
            ("PortSpec", [
                "description": "A port or a range \"low-high\"",
                "oneOf": [integerRange(0, 65_535), ["type": "string", "pattern": "^[0-9]+(-[0-9]+)?$"]],
            ]),
            ("TlsMatchConfig", object("TLS and HTTP matchers", [
                ("mode", enumeration(["metadata", "intercept"])), ("sni", ref("TlsNameMatchConfig")),
                ("server_dn", string), ("server_san", ref("TlsNameMatchConfig")),
                ("server_cn", ref("TlsNameMatchConfig")), ("fingerprint_sha256", stringList),
                ("trust_anchors_pem", stringList), ("tls13_uninspectable", action),
                ("http", ref("HttpPolicyConfig")),
            ])),
            ("TlsNameMatchConfig", [
                "description": "A regex string, a list of exact names, or {exact, regex}",
                "oneOf": [string, stringList, object("exact and/or regex", [("exact", stringList), ("regex", string)])],
            ]),
            ("HttpPolicyConfig", [
                "description": "At least one of request or response",
                "type": "object", "additionalProperties": false,
                "properties": ["request": ref("HttpRequestPolicyConfig"), "response": ref("HttpResponsePolicyConfig")],
                "anyOf": [["required": ["request"]], ["required": ["response"]]],
            ]),
            ("HttpRequestPolicyConfig", object("HTTP request matchers", [
                ("host", stringMatch), ("methods", stringList),
                ("path", object("path matchers", [("exact", stringList), ("prefix", stringList), ("regex", string)])),
                ("query", object("query matchers", [
                    ("keys_present", stringList), ("key_values_exact", map(stringList)),
                    ("key_values_regex", map(string)),
                ])),
                ("headers", headerMatch),
            ])),
            ("HttpResponsePolicyConfig", object("HTTP response matchers", [("headers", headerMatch)])),

            // Records and responses.
            ("PolicyRecord", object("A stored policy", required: [
                "id", "mode", "active", "created_at", "updated_at", "version", "policy",
            ], policyRecordProperties)),
            ("PolicyWriteResponse", object("A stored policy after a write, with its deployment",
                                           required: ["id", "mode", "active", "created_at", "updated_at", "version",
                                                      "policy", "deployment"],
                                           policyRecordProperties + [
                ("deployment", ref("Deployment")), ("warnings", array(ref("ErrorDetail"))),
            ])),
            ("Deployment", object("Which generation runs and whether the dataplane confirmed it",
                                  required: ["generation", "compiled", "dataplane"], [
                ("generation", integer), ("policy_id", string), ("version", integer), ("mode", ref("PolicyMode")),
                ("compiled", boolean),
                ("dataplane", enumeration(["confirmed", "unconfirmed", "failed", "absent", "none"])),
                ("error", string),
            ])),
            ("PolicyList", object("Policies", required: ["policies"], [("policies", array(ref("PolicyRecord")))])),
            ("PolicyVersion", object("One version", required: ["policy_id", "version", "mode", "created_at", "actor",
                                                               "policy"], [
                ("policy_id", string), ("version", integer), ("name", string), ("mode", ref("PolicyMode")),
                ("created_at", dateTime), ("actor", string), ("policy", ref("PolicyConfig")),
            ])),
            ("PolicyVersionList", object("Versions", required: ["versions"], [
                ("versions", array(ref("PolicyVersion"))),
            ])),
            ("PerformanceMode", object("The event surfaces setting", required: ["enabled"], [("enabled", boolean)])),
            ("Finding", object("An aggregated deny (enforced) or would-be deny (audit)", required: [
                "finding_type", "policy_id", "enforced", "first_seen", "last_seen", "count",
            ], [
                ("finding_type", string), ("policy_id", string), ("source_group", string), ("rule", string),
                ("destination", string), ("port", integer), ("proto", string), ("hostname", string),
                ("icmp_type", integer), ("icmp_code", integer), ("enforced", boolean), ("first_seen", dateTime),
                ("last_seen", dateTime), ("count", integer),
            ])),
            ("FindingList", object("Findings", required: ["findings"], [("findings", array(ref("Finding")))])),
            ("DNSCacheEntry", object("A hostname's learned addresses", required: ["hostname", "addresses"], [
                ("hostname", string), ("rule", string),
                ("addresses", array(object("A learned address", required: ["address", "expires_at"], [
                    ("address", string), ("expires_at", dateTime),
                ]))),
            ])),
            ("DNSCache", object("The DNS cache", required: ["entries"], [("entries", array(ref("DNSCacheEntry")))])),
            ("FlowEvent", object("The data of a wiretap flow or flow_end event", required: [
                "flow_id", "time", "src", "dst", "src_port", "dst_port", "proto", "verdict", "bytes", "packets",
            ], [
                ("flow_id", string), ("time", dateTime), ("src", string), ("dst", string),
                ("src_port", integerRange(0, 65_535)), ("dst_port", integerRange(0, 65_535)), ("proto", string),
                ("verdict", enumeration(FlowVerdict.allCases.map(\.rawValue))), ("policy_id", nullable(string)),
                ("source_group", nullable(string)), ("rule", nullable(string)), ("hostname", nullable(string)),
                ("bytes", integer), ("packets", integer),
            ])),
            ("AdminLogEntry", object("One write", required: ["seq", "at", "actor", "action", "target"], [
                ("seq", integer), ("at", dateTime), ("actor", string), ("action", string), ("target", string),
                ("before", map(string)), ("after", map(string)),
            ])),
            ("AdminLog", object("Admin log", required: ["entries"], [("entries", array(ref("AdminLogEntry")))])),
            ("Role", enumeration(["readonly", "admin"])),
            ("ServiceAccount", object("A service account", required: ["id", "name", "role", "created_at"], [
                ("id", string), ("name", string), ("role", ref("Role")), ("created_at", dateTime),
                ("disabled_at", dateTime),
            ])),
            ("ServiceAccountList", object("Accounts", required: ["service_accounts"], [
                ("service_accounts", array(ref("ServiceAccount"))),
            ])),
            ("CreateServiceAccount", object("New account", required: ["name", "role"], [
                ("name", string), ("role", ref("Role")),
            ])),
            ("CreateToken", object("New token (body optional)", [("name", string)])),
            ("Token", object("A token; `token` (the secret) only when created", required: [
                "id", "account_id", "created_at",
            ], [
                ("id", string), ("account_id", string), ("name", string), ("created_at", dateTime),
                ("revoked_at", dateTime), ("token", string),
            ])),
            ("TokenList", object("Tokens", required: ["tokens"], [("tokens", array(ref("Token")))])),
            ("Health", object("Liveness", required: ["status"], [("status", string)])),
            ("ReadinessCheck", object("One check", required: ["name", "status", "detail"], [
                ("name", enumeration(["store", "policy", "dataplane", "dns_proxy"])),
                ("status", enumeration(["ok", "fail", "absent"])), ("detail", string),
            ])),
            ("Readiness", object("Readiness", required: ["ready", "checks"], [
                ("ready", boolean), ("checks", array(ref("ReadinessCheck"))),
            ])),
            ("Stats", object("Node statistics", required: ["policy", "dataplane", "dns", "findings", "wiretap"], [
                ("policy", ref("Deployment")),
                ("dataplane", object("Dataplane", required: ["kind", "running", "detail", "counters"], [
                    ("kind", string), ("running", boolean), ("confirmed_generation", integer), ("detail", string),
                    ("counters", counters),
                ])),
                ("dns", object("DNS proxy", required: ["present", "counters"], [
                    ("present", boolean), ("counters", counters),
                ])),
                ("findings", object("Findings pipeline", required: ["dropped"], [("dropped", integer)])),
                ("wiretap", object("Wiretap", required: ["subscribers", "published", "rate_limited", "dropped"], [
                    ("subscribers", integer), ("published", integer), ("rate_limited", integer), ("dropped", integer),
                ])),
            ])),
            ("ErrorDetail", object("One problem", required: ["path", "message"], [
                ("path", string), ("message", string),
            ])),
            ("Error", object("Every error response", required: ["error", "details"], [
                ("error", string), ("details", array(ref("ErrorDetail"))),
            ])),
        ])
    }

    static var policyRecordProperties: [(String, Doc)] {
        [
            ("id", string), ("name", string), ("mode", ref("PolicyMode")), ("active", boolean),
            ("created_at", dateTime), ("updated_at", dateTime), ("version", integer), ("policy", ref("PolicyConfig")),
        ]
    }
}

/// Serves the document, open without a token like /health.
struct OpenAPIRoutes {
    func register(on router: Router<SluiceRequestContext>) {
        for name in ["openapi/sluice-v1.json", "openapi/neuwerk-v1.json"] {
            router.get(RouterPath(name)) { _, _ -> Response in
                Response(
                    status: .ok, headers: [.contentType: "application/json; charset=utf-8"],
                    body: .init(byteBuffer: ByteBuffer(string: OpenAPIDocument.text)))
            }
        }
    }
}
