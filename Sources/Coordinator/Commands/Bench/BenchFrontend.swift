import ArgumentParser
import Foundation
import Shared

/// Seconds of audio turned into log-mel per second of one core, for both presets.
struct BenchFrontend: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "frontend",
        abstract: "Measure the log-mel front end: seconds of audio per second on one thread, for both presets.",
        discussion: """
        Synthesises `--seconds` of audio (tones, chirps and noise) at each preset's sample rate and \
        times LogMelExtractor on one thread (framing, window, FFT, magnitude, mel, log; decoding and \
        resampling are not included). The best and median of `--repeats` runs are printed, with the \
        librosa figures this machine was compared to (librosa 0.10 melspectrogram + log, 1 thread: \
        ~7,000× real time at 16 kHz, ~2,140× at 48 kHz).
        """
    )

    @Option(help: "Seconds of synthetic audio per run.")
    var seconds: Double = 600

    @Option(help: "Timed runs per preset (the best and the median are reported).")
    var repeats: Int = 5

    @Option(help: "Presets to measure: yamnet, paper48k or both.")
    var preset: String = "both"

    @Flag(help: "Print the results as JSON.")
    var json = false

    func validate() throws {
        if !(seconds >= 1) { throw ValidationError("--seconds must be at least 1 (got \(seconds))") }
        if repeats < 1 { throw ValidationError("--repeats must be at least 1 (got \(repeats))") }
        if !["yamnet", "paper48k", "both"].contains(preset) { throw ValidationError("--preset must be yamnet, paper48k or both (got '\(preset)')") }
    }

    func run() throws {
        let world = Runtime.start(threads: 1)
        let presets: [(String, FrontEndConfig, Double)] = [("yamnet", .yamnet, 7000), ("paper48k", .paper48k, 2140)]
            .filter { preset == "both" || $0.0 == preset }
        var rows: [[String: Any]] = []
        for (name, config, librosa) in presets where world.isRoot {
            let audio = Self.testSignal(seconds: seconds, rate: config.sampleRate)
            let extractor = LogMelExtractor(config: config)
            _ = audio.withUnsafeBufferPointer { extractor.logMel($0) }  // warm caches and pages
            var rates: [Double] = []
            for _ in 0..<repeats {
                let t0 = DispatchTime.now().uptimeNanoseconds
                let r = audio.withUnsafeBufferPointer { extractor.logMel($0) }
                let dt = Double(DispatchTime.now().uptimeNanoseconds - t0) / 1e9
                precondition(r.frames > 0)
                rates.append(seconds / dt)
            }
            rates.sort()
            let best = rates.last!, median = rates[rates.count / 2]
            rows.append(["preset": name, "best": best, "median": median, "librosa": librosa, "target": 3 * librosa])
            if !json {
                print(String(format: "%-9@ %8.0f× real time (best of %d), median %8.0f×  |  librosa ~%.0f×, target ≥ %.0f× → %@",
                             name as NSString, best, repeats, median, librosa, 3 * librosa,
                             (median >= 3 * librosa ? "met" : "NOT met") as NSString))
            }
        }
        if json, world.isRoot {
            let data = try JSONSerialization.data(withJSONObject: ["machine": CPUInfo.modelName, "threads": 1, "seconds": seconds, "results": rows],
                                                  options: [.prettyPrinted, .sortedKeys])
            print(String(decoding: data, as: UTF8.self))
        } else if world.isRoot {
            print("machine: \(CPUInfo.modelName), 1 thread, \(Int(seconds)) s of audio per run")
        }
        world.finalize()
    }

    /// Speech-like test audio: a few harmonic tones, a chirp and noise (the values do not change the
    /// work done, but a realistic signal keeps denormals and silence out of the measurement).
    static func testSignal(seconds: Double, rate: Int) -> [Float] {
        var rng = SeededGenerator(seed: 7, stream: "bench/frontend")
        let n = Int(seconds * Double(rate))
        var out = [Float](repeating: 0, count: n)
        var phase = 0.0
        for i in 0..<n {
            let t = Double(i) / Double(rate)
            let f0 = 140 + 60 * sin(2 * Double.pi * 0.7 * t)
            phase += 2 * Double.pi * f0 / Double(rate)
            let v = 0.3 * sin(phase) + 0.15 * sin(2 * phase) + 0.08 * sin(3 * phase) + 0.02 * rng.normal()
            out[i] = Float(v)
        }
        return out
    }
}
