import ChpkiBase
import ChpkiPlatform
import Foundation

/// Where a command's output goes: human text or one JSON document on stdout, notes and errors on
/// stderr. `--quiet` drops the human text (JSON and errors still print); `--verbose` adds detail.
/// Every message passes through `ControlCharacters.escaped` here: a name read from a file can
/// neither split a line nor send the terminal an escape sequence.
public final class Reporter: @unchecked Sendable {
    public let json: Bool
    public let quiet: Bool
    public let verbose: Bool
    /// Whether stderr is a terminal a person watches: only then is there progress (SPEC §7).
    public let interactive: Bool
    /// `package`: the command layer's `error(_:)` (ChpkiCore, beside ErrorReport) writes through them.
    package let standardOutput: (String) -> Void
    package let standardError: (String) -> Void

    public init(json: Bool, quiet: Bool, verbose: Bool,
                interactive: Bool = Terminal.standardErrorIsATerminal,
                standardOutput: @escaping (String) -> Void = { FileHandle.standardOutput.write(Data($0.utf8)) },
                standardError: @escaping (String) -> Void = { FileHandle.standardError.write(Data($0.utf8)) }) {
        self.json = json
        self.quiet = quiet
        self.verbose = verbose
        self.interactive = interactive
        self.standardOutput = standardOutput
        self.standardError = standardError
    }

    /// The same reporter with its stdout going to `sink`: a step inside another command (the
    /// demo's, under `--json`) whose one JSON document the outer command collects into its own.
    public func capturingJSON(into sink: @escaping (String) -> Void) -> Reporter {
        Reporter(json: json, quiet: quiet, verbose: verbose, interactive: interactive,
                 standardOutput: sink, standardError: standardError)
    }

    /// A line of the human report (suppressed by --json and --quiet): one line, whatever it holds.
    public func line(_ text: String = "") {
        guard !json, !quiet else { return }
        standardOutput(ControlCharacters.escaped(text) + "\n")
    }

    /// A table of the human report: each cell escaped (a name can never add a line), in columns.
    public func table(header: [String], rows: [[String]]) {
        guard !json, !quiet else { return }
        let cells = rows.map { $0.map { ControlCharacters.escaped($0) } }
        standardOutput(Table.render(header: header, rows: cells) + "\n")
    }

    /// Text laid out in lines by chpki (a template, the nodes_dn YAML), printed as is but for
    /// control characters other than its newlines and tabs.
    public func block(_ text: String) {
        guard !json, !quiet else { return }
        standardOutput(ControlCharacters.escaped(text, keeping: ControlCharacters.layout))
    }

    /// The step to take after a command that changed something, as the report's last line.
    public func next(_ steps: [String]) {
        guard let first = steps.first else { return }
        line("next: \(first)")
        for step in steps.dropFirst() { line("      \(step)") }
    }

    /// Detail shown with --verbose, on stderr so it never mixes with JSON.
    public func detail(_ text: String) {
        guard verbose else { return }
        standardError(ControlCharacters.escaped(text) + "\n")
    }

    /// A note the operator should see unless --quiet (a weak setting they chose).
    public func note(_ text: String) {
        guard !quiet else { return }
        standardError("chpki: \(ControlCharacters.escaped(text))\n")
    }

    /// A one-off status line for a person watching (e.g. waiting for a lock): only on a terminal,
    /// so scripts and logs see one line per error.
    public func progress(_ text: String) {
        guard !quiet, interactive else { return }
        standardError("chpki: \(ControlCharacters.escaped(text))\n")
    }

    /// A progress line for a batch of `total` items, redrawn in place on stderr (count, rate,
    /// time left) while the batch runs. It draws only on a terminal and never with --quiet; the
    /// returned ticker is then inert, so callers need no check of their own.
    public func progress(total: Int, label: String) -> ProgressTicker {
        ProgressTicker(total: total, label: label, write: !quiet && interactive && total > 0 ? standardError : nil)
    }

    /// The one JSON document of `--json`, keys sorted so output is stable.
    public func emit<T: Encodable>(_ value: T) throws {
        guard json else { return }
        standardOutput(try Self.encodeJSON(value) + "\n")
    }

    /// A JSON document built elsewhere (already serialised), printed as `emit` prints one.
    public func emitRaw(_ document: Data) {
        guard json else { return }
        standardOutput(String(decoding: document, as: UTF8.self) + "\n")
    }

    package static func encodeJSON<T: Encodable>(_ value: T) throws -> String {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
        encoder.dateEncodingStrategy = .custom { date, encoder in
            var container = encoder.singleValueContainer()
            try container.encode(RFC3339.format(date))
        }
        // JSONEncoder escapes C0 controls itself; DEL and C1 are valid JSON raw, but not on a terminal.
        let text = String(decoding: try encoder.encode(value), as: UTF8.self)
        return String(String.UnicodeScalarView(text.unicodeScalars.flatMap { scalar -> [Unicode.Scalar] in
            guard (0x7F...0x9F).contains(scalar.value) else { return [scalar] }
            return Array(String(format: "\\u%04x", scalar.value).unicodeScalars)
        }))
    }
}

/// One batch's progress line: `chpki: signing 1,234/7,001 certificates  412/s  14s left`,
/// rewritten in place with `\r`. Safe to advance from several threads. Redraws at most ten times
/// a second and not before the batch has run a quarter of a second, so quick runs print nothing.
public final class ProgressTicker: ProgressSink, @unchecked Sendable {
    static let redrawInterval: UInt64 = 100_000_000   // ns
    /// `CHPKI_PROGRESS_FIRST_MS` (tests only) moves the first draw, so a small batch shows progress.
    static let firstDrawAfter: UInt64 = ProcessInfo.processInfo.environment["CHPKI_PROGRESS_FIRST_MS"]
        .flatMap { UInt64($0) }.map { min($0, 3_600_000) * 1_000_000 } ?? 250_000_000   // ns

    private let total: Int
    private let label: String
    private let write: ((String) -> Void)?
    private let lock = NSLock()
    private let started = DispatchTime.now().uptimeNanoseconds
    private var done = 0
    private var lastDraw: UInt64 = 0
    private var drawn = false
    private var finished = false

    init(total: Int, label: String, write: ((String) -> Void)?) {
        self.total = total
        self.label = label
        self.write = write
    }

    /// Counts `count` more items done; redraws when a tenth of a second has passed.
    public func advance(by count: Int = 1) {
        guard write != nil else { return }
        lock.withLock {
            done = min(total, done + count)
            let now = DispatchTime.now().uptimeNanoseconds
            guard !finished, now - started >= Self.firstDrawAfter, now - lastDraw >= Self.redrawInterval else { return }
            lastDraw = now
            draw(now: now, final: false)
        }
    }

    /// Ends the line: the final count and rate, then a newline (only when a line was drawn).
    public func finish() {
        guard write != nil else { return }
        lock.withLock {
            guard !finished else { return }
            finished = true
            if drawn { draw(now: DispatchTime.now().uptimeNanoseconds, final: true) }
        }
    }

    deinit {
        // A batch that failed part-way: end the line so the error starts on its own.
        if drawn && !finished { write?("\n") }
    }

    private func draw(now: UInt64, final: Bool) {
        let seconds = Double(now - started) / 1e9
        let rate = seconds > 0 ? Double(done) / seconds : 0
        var text = "\r\u{1B}[Kchpki: \(label) \(Self.grouped(done))/\(Self.grouped(total))"
        text += "  \(Self.grouped(Int(rate.rounded())))/s"
        if final {
            text += "  in \(Self.duration(seconds))\n"
        } else if rate > 0 {
            text += "  \(Self.duration(Double(total - done) / rate)) left"
        }
        drawn = true
        write?(text)
    }

    /// 7001 -> "7,001": counts an operator reads at a glance.
    package static func grouped(_ value: Int) -> String {
        let digits = String(value.magnitude)
        var out = ""
        for (index, digit) in digits.enumerated() {
            if index > 0 && (digits.count - index) % 3 == 0 { out.append(",") }
            out.append(digit)
        }
        return value < 0 ? "-" + out : out
    }

    /// 3.2 -> "3.2s", 221 -> "3m41s".
    package static func duration(_ seconds: Double) -> String {
        guard seconds.isFinite, seconds >= 0 else { return "?" }
        if seconds < 10 { return String(format: "%.1fs", seconds) }
        let whole = Int(seconds.rounded())
        return whole < 60 ? "\(whole)s" : "\(whole / 60)m\(String(format: "%02d", whole % 60))s"
    }
}
