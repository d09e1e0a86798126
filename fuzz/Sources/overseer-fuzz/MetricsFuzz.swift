import OverseerCore
import OverseerProtocol

/// What a --metrics-listen client sends, and label values from outside. First byte
/// even: the rest is a request head as received so far; odd: a label value.
func fuzzMetrics(_ bytes: UnsafeRawBufferPointer) {
    var reader = ByteReader(bytes)
    if reader.byte() & 1 == 0 {
        let head = Array(reader.bytes)
        let verdict = MetricsHTTP.judge(head)
        let ended = head.indices.contains { index in
            head[index] == 0x0a && (head.dropFirst(index + 1).first == 0x0a
                || (head.dropFirst(index + 1).first == 0x0d && head.dropFirst(index + 2).first == 0x0a))
        }
        switch verdict {
        case .incomplete:
            require(!ended && head.count < MetricsHTTP.maximumHeadLength, "head \(head) judged incomplete")
        case .metrics:
            let line = head.prefix { $0 != 0x0d && $0 != 0x0a }
            require(line.starts(with: Array("GET /metrics".utf8)) || line.starts(with: Array("HEAD /metrics".utf8)),
                    "head \(head) served")
        case .health:
            let line = head.prefix { $0 != 0x0d && $0 != 0x0a }
            require(MetricsHTTP.healthPaths.contains { path in
                line.starts(with: Array("GET \(path)".utf8)) || line.starts(with: Array("HEAD \(path)".utf8))
            }, "head \(head) answered as a health check")
        case let .refuse(status, _):
            require([400, 404, 405, 431].contains(status), "status \(status) for \(head)")
            require(ended || status == 431, "head \(head) refused before it ended")
        }
        return
    }
    let value = reader.rest()
    let escaped = MetricsText.escapeLabelValue(value)
    require(escaped.utf8.count <= MetricsText.maximumLabelLength + "…".utf8.count, "label \(value.debugDescription) → \(escaped.utf8.count) bytes")
    require(!escaped.unicodeScalars.contains { $0.value < 0x20 || $0.value == 0x7F }, "control character in \(escaped.debugDescription)")
    // Read back as the format's parsers do: every backslash starts \\, \" or \n, and no quote stands alone.
    var unescaped = String.UnicodeScalarView()
    var scalars = escaped.unicodeScalars[...]
    while let scalar = scalars.popFirst() {
        require(scalar != "\"", "bare quote in \(escaped.debugDescription)")
        guard scalar == "\\" else {
            unescaped.append(scalar)
            continue
        }
        let next = scalars.popFirst()
        require(next == "\\" || next == "\"" || next == "n", "bad escape in \(escaped.debugDescription)")
        unescaped.append(next == "n" ? "\n" : next!)
    }
    let kept = String(unescaped).hasSuffix("…") && escaped.utf8.count > MetricsText.maximumLabelLength - 8
        ? String(String(unescaped).dropLast()) : String(unescaped)
    let expected = String(String.UnicodeScalarView(value.unicodeScalars.map { $0 == "\n" || ($0.value >= 0x20 && $0.value != 0x7F) ? $0 : "\u{FFFD}" }))
    require(expected.unicodeScalars.starts(with: kept.unicodeScalars), "label \(value.debugDescription) read back as \(kept.debugDescription)")
}
