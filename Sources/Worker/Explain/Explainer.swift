import Foundation
import Shared

/// Computes one task (one file × one method) and returns its output files, ready to be written
/// by whoever holds the output folder (rank 0 of the farm).
///
/// A task: the file's patches (from the store, or the run's front end on an audio file), the
/// model's probabilities for each and for the file (mean over the GDS-kept patches, as the
/// evaluation does), the target class, the method's map per patch, the utterance map (patch maps
/// averaged where they overlap), the faithfulness curves and the pointing game, and for Grad-CAM
/// the audible versions. Any error (unreadable audio, non-finite values) fails the task alone.
public final class Explainer {
    public let classifier: GradCAMSource
    public let labels: [String]
    public let frontEnd: FrontEndConfig
    public let settings: ExplainSettings
    public let store: FeatureStore?
    public let modelFingerprint: String
    /// Recorded in each task's summary.
    public var rank = 0
    private var reader: SegmentReader?
    private var extractor: LogMelExtractor?

    public init(classifier: GradCAMSource, labels: [String], frontEnd: FrontEndConfig, settings: ExplainSettings,
                store: FeatureStore?, modelFingerprint: String) {
        precondition(classifier.classes == labels.count, "\(classifier.classes) classes for \(labels.count) labels")
        precondition(classifier.frames == frontEnd.patchFrames && classifier.bands == frontEnd.melBands,
                     "the model takes \(classifier.frames) × \(classifier.bands) patches, the front end makes \(frontEnd.patchFrames) × \(frontEnd.melBands)")
        self.classifier = classifier
        self.labels = labels
        self.frontEnd = frontEnd
        self.settings = settings
        self.store = store
        self.modelFingerprint = modelFingerprint
        reader = store?.makeReader(cacheBlocks: 2)
    }

    /// A hash of a network's numbers (trainable and batch-norm state): outputs computed with other
    /// weights are never reused.
    public static func modelFingerprint<S: Real>(_ net: Network<S>) -> String {
        let p = net.params
        let v = XXHash64.hash(UnsafeRawBufferPointer(start: p.values.pointer, count: p.values.count * MemoryLayout<S>.stride))
        let st = XXHash64.hash(UnsafeRawBufferPointer(start: p.state.pointer, count: p.state.count * MemoryLayout<S>.stride), seed: v)
        return XXHash64.hex(st) + "-" + net.config.architecture.rawValue
    }

    /// A file's patches as the model sees them.
    public struct PreparedFile: Sendable {
        public var patches: [Float]
        public var startFrames: [Int]
        /// Patches Gaussian data selection kept (the file's prediction averages over these).
        public var kept: [Bool]
        public var count: Int { startFrames.count }
    }

    public func prepare(_ item: ExplainItem) throws -> PreparedFile {
        if let problem = item.problem { throw ExplainError(problem) }
        let per = frontEnd.patchValues
        if let id = item.fileID {
            guard let store, let reader else { preconditionFailure("a store item without a store") }
            guard id >= 0 && id < store.files.count else { throw ExplainError("\(store.directory): no file \(id)") }
            let segs = Array(store.files[id].segments)
            guard !segs.isEmpty else { throw ExplainError("\(item.relativePath): the store holds no segment of this file") }
            var patches = [Float](repeating: 0, count: segs.count * per)
            try patches.withUnsafeMutableBufferPointer { b in
                for (k, s) in segs.enumerated() { try reader.read(s, into: b.baseAddress! + k * per) }
            }
            let infos = segs.map { store.segment($0) }
            return PreparedFile(patches: patches, startFrames: infos.map(\.startFrame), kept: infos.map(\.kept))
        }
        let clip = try readAudio(item)
        if extractor == nil { extractor = LogMelExtractor(config: frontEnd) }
        let mel = clip.withUnsafeBufferPointer { extractor!.logMel($0) }
        let cut = extractor!.patches(logMel: mel.values, frames: mel.frames)
        guard cut.count > 0 else {
            throw ExplainError("\(item.path): too short for one patch of \(frontEnd.patchFrames) frames")
        }
        var kept = [Bool](repeating: true, count: cut.count)
        if let gds = store?.manifest.gds, gds.enabled {
            kept = GaussianDataSelection.select(cut.values, count: cut.count, length: per, threshold: gds.threshold).kept
        }
        return PreparedFile(patches: cut.values, startFrames: cut.startFrames, kept: kept)
    }

    /// The item's audio at the front end's rate (the store's resampler for store files).
    public func readAudio(_ item: ExplainItem) throws -> [Float] {
        let quality = store?.manifest.options.resampler ?? .best
        let clip = try AudioFile.read(item.path, resampledTo: frontEnd.sampleRate, quality: quality)
        return clip.samples
    }

    /// Counts the patches sent through the model (forward passes per task in the summary).
    final class Counting: GradCAMSource {
        let inner: GradCAMSource
        var patches = 0
        init(_ inner: GradCAMSource) { self.inner = inner }
        var classes: Int { inner.classes }
        var frames: Int { inner.frames }
        var bands: Int { inner.bands }
        var maxBatch: Int { inner.maxBatch }
        func probabilities(_ x: UnsafePointer<Float>, count: Int, into out: UnsafeMutablePointer<Double>) throws {
            patches += count
            try inner.probabilities(x, count: count, into: out)
        }
        func featureGradients(_ x: UnsafePointer<Float>, count: Int, targets: [Int], layer: Tap) throws -> FeatureGradients {
            patches += count
            return try inner.featureGradients(x, count: count, targets: targets, layer: layer)
        }
    }

    /// Runs one task. The record's `outputs` lists the files, the JSON summary last.
    public func run(_ method: ExplainMethod, _ item: ExplainItem, poll: @escaping () -> Void = {}) throws -> (record: TaskRecord, outputs: [TaskOutput]) {
        let t0 = DispatchTime.now().uptimeNanoseconds
        let model = Counting(classifier)
        let file = try prepare(item)
        let per = frontEnd.patchValues, frames = frontEnd.patchFrames, bands = frontEnd.melBands
        if let bad = file.patches.firstIndex(where: { !$0.isFinite }) {
            throw ExplainError("\(item.relativePath): patch \(bad / per) holds a non-finite log-mel value (corrupt features)")
        }
        let P = file.count, C = labels.count

        // Probabilities: per patch, and for the file (mean over kept patches; all when none is).
        var runner = BatchRunner(model, poll: poll)
        let patchProbs = try file.patches.withUnsafeBufferPointer { src in
            try runner.run(count: P) { i, dst in dst.update(from: src.baseAddress! + i * per, count: per) }
        }
        let useAll = !file.kept.contains(true)
        var fileProbs = [Double](repeating: 0, count: C)
        var used = 0
        for p in 0..<P where useAll || file.kept[p] {
            for c in 0..<C { fileProbs[c] += patchProbs[p * C + c] }
            used += 1
        }
        fileProbs = fileProbs.map { $0 / Double(used) }
        let predicted = fileProbs.indices.max { fileProbs[$0] < fileProbs[$1] }!
        let target: Int
        switch settings.target {
        case .predicted: target = predicted
        case .label:
            guard let l = item.label, let i = labels.firstIndex(of: l) else {
                throw ExplainError("\(item.relativePath): --target label, but the file's label \(item.label.map { "'\($0)'" } ?? "is unknown and") is not one of the run's classes (\(labels.joined(separator: ", ")))")
            }
            target = i
        case .named(let name):
            guard let i = labels.firstIndex(of: name) ?? Emotion.canonicalName(name).flatMap({ labels.firstIndex(of: $0) }) else {
                throw ExplainError("--target \(name): not one of the run's classes (\(labels.joined(separator: ", ")))")
            }
            target = i
        }

        // The method's maps, per patch (P × frames × bands).
        var maps: [Float] = []
        var extra = SafeTensors()
        var notes: [String: Double] = [:]
        try file.patches.withUnsafeBufferPointer { src in
            let x = src.baseAddress!
            switch method {
            case .gradcam:
                let r = try GradCAM.explain(model, patches: x, count: P, target: target, settings: settings.gradcam, poll: poll)
                maps = r.maps
                extra["coarse_maps"] = StoredTensor(r.coarse, shape: [P, r.h, r.w])
            case .lime:
                var rng = SeededGenerator(seed: settings.seed, stream: "lime/" + item.stem)
                let r = try LIME.explain(model, patches: x, count: P, target: target, settings: settings.lime,
                                         baseline: settings.baseline, rng: &rng, poll: poll)
                maps = r.flatMap(\.map)
                let regions = r[0].regions.count
                extra["region_weights"] = StoredTensor(r.flatMap(\.weights), shape: [P, regions])
                extra["region_labels"] = StoredTensor(r.flatMap { $0.regions.labels.map(Int64.init) }, shape: [P, frames, bands])
                extra["intercepts"] = StoredTensor(r.map(\.intercept), shape: [P])
                extra["fit_r2"] = StoredTensor(r.map(\.score), shape: [P])
                notes["limeMeanWeightedR2"] = r.map(\.score).reduce(0, +) / Double(P)
            case .occlusion:
                let r = try Occlusion.explain(model, patches: x, count: P, target: target, settings: settings.occlusion,
                                              baseline: settings.baseline, poll: poll)
                maps = r.flatMap(\.map)
            }
        }
        if let bad = maps.firstIndex(where: { !$0.isFinite }) {
            throw ExplainError("\(item.relativePath): the \(method.title) map of patch \(bad / per) is not finite (numerical trouble)")
        }
        let covered = Assembly.coveredFrames(startFrames: file.startFrames, patchFrames: frames)
        let map = Assembly.utterance(maps, startFrames: file.startFrames, patchFrames: frames, bands: bands)
        let logMel = Assembly.logMel(patches: file.patches, startFrames: file.startFrames, patchFrames: frames, bands: bands)

        // Faithfulness: the method's cell order and random orders (seeded by the file: the same
        // random orders for every method of the file).
        var scores: Faithfulness.FileScores?
        if settings.faithfulnessEnabled {
            let f = settings.faithfulness
            let (cellLabels, cells) = Faithfulness.cells(frames: frames, bands: bands, settings: f)
            var orders: [[[Int]]] = []
            maps.withUnsafeBufferPointer { m in
                for p in 0..<P {
                    var rng = SeededGenerator(seed: settings.seed, stream: "faithfulness/\(item.stem)/\(p)")
                    var os = [Faithfulness.order(map: m.baseAddress! + p * per, labels: cellLabels, cells: cells)]
                    for _ in 0..<f.randomOrders {
                        var o = Array(0..<cells)
                        o.seededShuffle(using: &rng)
                        os.append(o)
                    }
                    orders.append(os)
                }
            }
            let curves = try file.patches.withUnsafeBufferPointer { src in
                try Faithfulness.curves(model, patches: src.baseAddress!, count: P, target: target, orders: orders,
                                        labels: cellLabels, cells: cells, settings: f, baseline: settings.baseline, poll: poll)
            }
            scores = Faithfulness.fileScores(curves)
            extra["deletion"] = StoredTensor(scores!.deletion, shape: [scores!.deletion.count])
            extra["insertion"] = StoredTensor(scores!.insertion, shape: [scores!.insertion.count])
            extra["random_deletion"] = StoredTensor(scores!.randomDeletion, shape: [scores!.randomDeletion.count])
            extra["random_insertion"] = StoredTensor(scores!.randomInsertion, shape: [scores!.randomInsertion.count])
        }
        let pointing = Faithfulness.pointingGame(map: map, frames: covered, frontEnd: frontEnd, cues: item.cues)

        // Output files.
        let names = ExplainOutputs.Names(method: method, stem: item.stem)
        var outputs: [TaskOutput] = []
        var audible: TaskRecord.Audible?
        if method == .gradcam {
            let profile = FrequencyProfile.fileProfile(map, frames: covered, bands: bands)
            extra["band_profile"] = StoredTensor(profile, shape: [bands])
            if settings.audio {
                let samples = try readAudio(item)
                var padded = samples
                padded += [Float](repeating: 0, count: max(0, frontEnd.paddedLength(samples.count) - samples.count))
                let gated = AudibleGradCAM.gated(samples: samples, map: map, frames: covered, bands: bands, frontEnd: frontEnd,
                                                 settings: settings.audible)
                let masked = Array(AudibleGradCAM.masked(samples: padded, map: map, frames: covered, frontEnd: frontEnd).prefix(samples.count))
                extra["time_profile"] = StoredTensor(gated.profile, shape: [gated.profile.count])
                outputs.append(TaskOutput(name: names.audible, data: try ExplainOutputs.wav(gated.audio, sampleRate: frontEnd.sampleRate)))
                outputs.append(TaskOutput(name: names.masked, data: try ExplainOutputs.wav(masked, sampleRate: frontEnd.sampleRate)))
                let keptShare = gated.gate.isEmpty ? 0 : Double(gated.gate.reduce(0, +)) / Double(gated.gate.count)
                audible = TaskRecord.Audible(keptShare: keptShare, smoothingFrames: AudibleGradCAM.smoothingFrames(settings.audible.smoothingSeconds, frontEnd: frontEnd))
            }
        }
        var st = extra
        st.metadata = ["method": method.rawValue, "file": item.relativePath, "target": labels[target],
                       "layout": "map and log_mel are [frames, mel bands]; patch_maps [patches, frames, bands]; frame f starts at sample f*hop"]
        st["map"] = StoredTensor(map, shape: [covered, bands])
        st["log_mel"] = StoredTensor(logMel, shape: [covered, bands])
        st["patch_maps"] = StoredTensor(maps, shape: [P, frames, bands])
        st["start_frames"] = StoredTensor(file.startFrames.map(Int64.init), shape: [P])
        st["kept"] = StoredTensor(file.kept.map { $0 ? UInt8(1) : 0 }, shape: [P])
        st["patch_probabilities"] = StoredTensor(patchProbs, shape: [P, C])
        st["file_probabilities"] = StoredTensor(fileProbs, shape: [C])
        outputs.insert(TaskOutput(name: names.safetensors, data: st.encode()), at: 0)
        let title = "\(item.relativePath) - \(method.title) - \(labels[target]) (p \(String(format: "%.2f", fileProbs[target])))"
        outputs.insert(TaskOutput(name: names.png, data: try ExplainOutputs.png(map: map, logMel: logMel, frames: covered,
                                                                                method: method, frontEnd: frontEnd, title: title)), at: 1)

        let seconds = Double(DispatchTime.now().uptimeNanoseconds - t0) / 1e9
        let record = TaskRecord(
            status: "ok", method: method.rawValue, file: item.fileID, path: item.relativePath, audio: item.path, stem: item.stem,
            label: item.label, prediction: labels[predicted],
            probabilities: Dictionary(uniqueKeysWithValues: zip(labels, fileProbs)),
            target: labels[target], targetProbability: fileProbs[target], patches: P, keptPatches: file.kept.filter { $0 }.count,
            frames: covered, secondsOfAudio: Double((covered - 1) * frontEnd.hopLength + frontEnd.windowLength) / Double(frontEnd.sampleRate),
            parameters: settings.parameters(for: method), fingerprint: settings.fingerprint(for: method, model: modelFingerprint, frontEnd: frontEnd),
            timing: TaskRecord.Timing(seconds: seconds, forwardPasses: model.patches), faithfulness: scores, pointing: pointing,
            audible: audible, notes: notes.isEmpty ? nil : notes, rank: rank,
            outputs: outputs.map(\.name) + [names.json])
        outputs.append(TaskOutput(name: names.json, data: Data((try jsonText(record) + "\n").utf8)))
        return (record, outputs)
    }
}
