import Foundation
import Shared

/// Settings of `ser synth`.
public struct SynthSettings: Codable, Hashable, Sendable {
    public var out: String
    public var filesPerClass: Int
    public var speakers: Int
    public var duration: Double
    public var seed: UInt64
    public var sampleRate: Int
    /// "wav" or "flac".
    public var format: String

    public init(out: String, filesPerClass: Int = 40, speakers: Int = 6, duration: Double = 2.0, seed: UInt64 = 1,
                sampleRate: Int = 16000, format: String = "wav") {
        self.out = out
        self.filesPerClass = filesPerClass
        self.speakers = speakers
        self.duration = duration
        self.seed = seed
        self.sampleRate = sampleRate
        self.format = format
    }
}

/// A built-in corpus of synthetic "emotional speech".
///
/// An utterance is a train of syllables: a band-limited sawtooth glottal source at the syllable's
/// pitch, a spectral-tilt low-pass, two formant resonators (the vowel changes per syllable), an
/// attack/release envelope, breath noise inside syllables and background noise throughout. The four
/// classes differ the way acted emotions do (Banse & Scherer 1996, in caricature):
///
/// | class   | pitch (× speaker's) | pitch movement in a syllable | loudness | syllables/s | tilt cut-off |
/// |---------|---------------------|------------------------------|----------|-------------|--------------|
/// | angry   | 1.45                | steep fall (−25 %)           | +8 dB    | 5.5         | 3400 Hz      |
/// | happy   | 1.35                | rise-fall arc (±22 %)        | +4 dB    | 4.8         | 2400 Hz      |
/// | neutral | 1.00                | almost flat (±4 %)           | 0 dB     | 4.0         | 1500 Hz      |
/// | sad     | 0.85                | slow fall (−8 %)             | −6 dB    | 2.8         | 900 Hz       |
///
/// Speakers differ in base pitch (110–190 Hz), formant scale, loudness (±2 dB), rate (±10 %) and tilt (±15 %), and every
/// file jitters each cue, so single cues overlap across speakers and classes: only their
/// combination tells the class. The cue boxes (`cues.csv`) are the voiced syllables: their time
/// span and the band from just below the lowest pitch to the top of the class-shaped spectrum.
/// Noise-only gaps carry no class information.
///
/// Every file is drawn from its own seeded stream, so the corpus is bitwise identical for a seed
/// whatever the number of ranks that render it.
public enum SynthCorpus {
    public static let classes = ["angry", "happy", "neutral", "sad"]

    struct ClassProfile {
        var pitch: Double, movement: Double, shape: Int, gainDB: Double, rate: Double, tilt: Double
    }
    static let profiles: [ClassProfile] = [
        ClassProfile(pitch: 1.45, movement: -0.25, shape: 0, gainDB: 8, rate: 5.5, tilt: 3400),
        ClassProfile(pitch: 1.35, movement: 0.22, shape: 1, gainDB: 4, rate: 4.8, tilt: 2400),
        ClassProfile(pitch: 1.00, movement: 0.04, shape: 1, gainDB: 0, rate: 4.0, tilt: 1500),
        ClassProfile(pitch: 0.85, movement: -0.08, shape: 0, gainDB: -6, rate: 2.8, tilt: 900),
    ]

    /// One file of the corpus.
    public struct FileSpec: Hashable, Sendable {
        public var index: Int
        public var speaker: Int
        public var label: Int
        public var number: Int
        public var format: String
        public var speakerName: String { String(format: "s%02d", speaker + 1) }
        public var relativePath: String { "\(speakerName)/\(SynthCorpus.classes[label])/\(number).\(format)" }
    }

    /// The files, class by class; file i of a class belongs to speaker i mod S.
    public static func files(_ s: SynthSettings) -> [FileSpec] {
        var out: [FileSpec] = []
        for c in 0..<classes.count {
            for i in 0..<s.filesPerClass {
                out.append(FileSpec(index: out.count, speaker: i % s.speakers, label: c, number: i / s.speakers, format: s.format))
            }
        }
        return out
    }

    struct Speaker {
        var pitch: Double, formant: Double, gainDB: Double, rate: Double, tilt: Double
    }

    static func speaker(_ k: Int, seed: UInt64) -> Speaker {
        var g = SeededGenerator(seed: seed, stream: "synth/speaker/\(k)")
        return Speaker(pitch: 110 + 80 * g.uniform(), formant: 0.92 + 0.18 * g.uniform(), gainDB: -2 + 4 * g.uniform(),
                       rate: 0.9 + 0.2 * g.uniform(), tilt: 0.85 + 0.3 * g.uniform())
    }

    struct Syllable {
        var t0: Double, t1: Double
        var f0: Double, movement: Double, shape: Int
        var f1: Double, f2: Double
        var gain: Double
    }

    /// Everything random about a file, drawn before any sample is made (rank 0 derives the cue
    /// boxes from it without rendering).
    struct Plan {
        var syllables: [Syllable]
        var tilt: Double
        var noiseLevel: Double
        var breath: Double
        var noiseSeed: UInt64
    }

    static func plan(_ f: FileSpec, _ s: SynthSettings) -> Plan {
        var g = SeededGenerator(seed: s.seed, stream: "synth/file/\(f.index)")
        let sp = speaker(f.speaker, seed: s.seed)
        let p = profiles[f.label]
        func jitter(_ x: Double, _ rel: Double) -> Double { x * (1 + rel * (2 * g.uniform() - 1)) }
        let pitch = jitter(sp.pitch * p.pitch, 0.1)
        let rate = jitter(p.rate * sp.rate, 0.12)
        let gainDB = p.gainDB + sp.gainDB + 4 * (g.uniform() - 0.5)
        let tilt = min(jitter(p.tilt * sp.tilt, 0.15), Double(s.sampleRate) * 0.45)
        var sylls: [Syllable] = []
        var t = 0.05 + 0.15 * g.uniform()
        while t < s.duration - 0.12 {
            let period = 1 / rate * (0.8 + 0.4 * g.uniform())
            let voiced = period * (0.55 + 0.25 * g.uniform())
            let t1 = min(t + voiced, s.duration - 0.02)
            let vowel = g.below(4)
            let f1 = [700.0, 500, 350, 600][vowel] * sp.formant * (0.95 + 0.1 * g.uniform())
            let f2 = [1200.0, 1800, 2200, 1000][vowel] * sp.formant * (0.95 + 0.1 * g.uniform())
            sylls.append(Syllable(t0: t, t1: t1, f0: pitch * (0.92 + 0.16 * g.uniform()), movement: jitter(p.movement, 0.25),
                                  shape: p.shape, f1: f1, f2: f2, gain: pow(10, (gainDB + 2 * (g.uniform() - 0.5)) / 20)))
            t += period
        }
        return Plan(syllables: sylls, tilt: tilt, noiseLevel: 0.004 + 0.008 * g.uniform(), breath: 0.02 + 0.04 * g.uniform(),
                    noiseSeed: g.next())
    }

    /// The pitch of a syllable at relative position u in [0, 1].
    @inline(__always)
    static func contour(_ sy: Syllable, _ u: Double) -> Double {
        sy.shape == 0 ? sy.f0 * (1 + sy.movement * u) : sy.f0 * (1 + sy.movement * sin(Double.pi * u) - 0.5 * sy.movement)
    }

    /// Cue boxes: one per voiced syllable.
    static func cues(_ plan: Plan, _ s: SynthSettings) -> [CueRegion] {
        plan.syllables.map { sy in
            let lo = min(contour(sy, 0), contour(sy, 0.5), contour(sy, 1))
            let top = min(max(sy.f2 + 600, 2 * plan.tilt), Double(s.sampleRate) / 2, 7500)
            return CueRegion(t0: sy.t0, t1: sy.t1, f0: (0.8 * lo).rounded(), f1: top.rounded())
        }
    }

    /// A two-pole resonator (constant peak gain band-pass) at `f` Hz with bandwidth `bw` Hz.
    struct Resonator {
        var b0 = 0.0, a1 = 0.0, a2 = 0.0, y1 = 0.0, y2 = 0.0
        mutating func tune(_ f: Double, _ bw: Double, _ sr: Double) {
            let r = exp(-Double.pi * bw / sr)
            a1 = 2 * r * cos(2 * Double.pi * f / sr)
            a2 = -r * r
            b0 = 1 - r
        }
        @inline(__always) mutating func step(_ x: Double) -> Double {
            let y = b0 * x + a1 * y1 + a2 * y2
            y2 = y1
            y1 = y
            return y
        }
    }

    /// The samples of one file and its cue boxes.
    public static func render(_ f: FileSpec, _ s: SynthSettings) -> (samples: [Float], cues: [CueRegion]) {
        let plan = plan(f, s)
        let sr = Double(s.sampleRate)
        let n = Int(s.duration * sr)
        var out = [Float](repeating: 0, count: n)
        var noise = SeededGenerator(seed: plan.noiseSeed)
        // Background noise, slightly coloured (one-pole low-pass mixed with white).
        var lp = 0.0
        for i in 0..<n {
            let w = 2 * noise.uniform() - 1
            lp += 0.2 * (w - lp)
            out[i] = Float(plan.noiseLevel * (0.5 * w + 1.5 * lp))
        }
        let tiltA = 1 - exp(-2 * Double.pi * plan.tilt / sr)
        for sy in plan.syllables {
            let i0 = Int(sy.t0 * sr), i1 = min(Int(sy.t1 * sr), n)
            guard i1 > i0 + 8 else { continue }
            var r1 = Resonator(), r2 = Resonator()
            r1.tune(sy.f1, 90, sr)
            r2.tune(sy.f2, 140, sr)
            var phase = 0.0, tiltY = 0.0
            let len = Double(i1 - i0)
            for i in i0..<i1 {
                let u = Double(i - i0) / len
                let f0 = contour(sy, u)
                let dt = f0 / sr
                phase += dt
                if phase >= 1 { phase -= 1 }
                // Band-limited sawtooth (polyBLEP removes the aliasing of the jump).
                var saw = 2 * phase - 1
                if phase < dt { let x = phase / dt; saw -= x + x - x * x - 1 } else if phase > 1 - dt { let x = (phase - 1) / dt; saw -= x * x + x + x + 1 }
                let src = saw + plan.breath * (2 * noise.uniform() - 1)
                tiltY += tiltA * (src - tiltY)
                let voiced = 0.35 * tiltY + 4 * r1.step(tiltY) + 3 * r2.step(tiltY)
                let env = u < 0.2 ? 0.5 - 0.5 * cos(Double.pi * u / 0.2) : (u > 0.7 ? 0.5 + 0.5 * cos(Double.pi * (u - 0.7) / 0.3) : 1)
                out[i] += Float(0.05 * sy.gain * env * voiced)
            }
        }
        return (out, cues(plan, s))
    }

    /// Writes the corpus: ranks render every N-th file; rank 0 writes manifest.csv and cues.csv
    /// last (atomically), so a folder with a manifest is complete. Collective.
    public static func run(_ s: SynthSettings, world: Communicator, console: Console) throws {
        let all = files(s)
        let mine = Array(stride(from: world.rank, to: all.count, by: world.size))
        if world.isRoot {
            try AtomicFile.makeDirectory(s.out)
            unlink(s.out + "/manifest.csv")
        }
        world.barrier()
        let progress = Progress("synth (rank 0)", total: mine.count, unit: "files", console: console)
        var failure: String? = nil
        let lock = NSLock()
        ComputeThreads.parallelFor(mine.count) { k in
            let f = all[mine[k]]
            let (samples, _) = render(f, s)
            do {
                try AudioFile.write(s.out + "/" + f.relativePath, samples: samples, sampleRate: s.sampleRate)
            } catch {
                lock.lock(); failure = failure ?? "\(error)"; lock.unlock()
            }
            if world.isRoot { lock.lock(); progress.advance(); lock.unlock() }
        }
        if let failure { world.abort("synth: \(failure)") }
        if world.isRoot { progress.finish() }
        world.barrier()
        if world.isRoot {
            var manifest = "path,label,speaker\n", cues = "path,t0,t1,f0,f1\n"
            for f in all {
                manifest += "\(f.relativePath),\(classes[f.label]),\(f.speakerName)\n"
                for c in self.cues(plan(f, s), s) {
                    cues += "\(f.relativePath),\(String(format: "%.4f,%.4f,%.0f,%.0f", c.t0, c.t1, c.f0, c.f1))\n"
                }
            }
            try AtomicFile.write(cues, to: s.out + "/cues.csv")
            try AtomicFile.write(manifest, to: s.out + "/manifest.csv")
        }
    }
}
