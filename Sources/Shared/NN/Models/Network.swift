import Foundation

/// Where Grad-CAM can look: the feature maps of the fused network.
public enum Tap: String, CaseIterable, Codable, Sendable {
    /// The depth-concatenated map Z that the head sees: (6, 4, 1536) for fusion-v1.
    case fused
    /// VGGish after pool 2, 3 and 4: (24, 16, 128), (12, 8, 256), (6, 4, 512).
    case vggishA = "vggish-a", vggishB = "vggish-b", vggishC = "vggish-c"
    /// YAMNet's last map (layer 14), before upsampling: (3, 2, 1024).
    case yamnet
}

/// How batch norm normalises in a forward pass.
public enum BatchNormMode: Sendable {
    /// Statistics of the (global) batch; training.
    case batch
    /// Moving statistics; inference, explanations, and a frozen YAMNet.
    case moving
}

/// fusion-v1 and its single-branch baselines, on one flat parameter buffer.
///
/// Shapes are per sample (H, W, C), NHWC. fusion-v1 (shared/golden/README.md §4):
///
///     VGGish taps  A (24,16,128)  B (12,8,256)  C (6,4,512)
///     V = ReLU(conv1×1_a(avgpool4(A)) + conv1×1_b(avgpool2(B)) + conv1×1_c(C))     (6,4,512)
///     Y = nearest-upsample×2(YAMNet layer14)                                         (6,4,1024)
///     Z = concat(V, Y)                                                                (6,4,1536)
///     F = ReLU(conv1×1(Z));  D = ReLU(dense(flatten F));  logits = dense(D)          (6,4,256) (512) (classes)
///
/// vggish-only uses Z = V, yamnet-only Z = Y. All activations a backward pass needs are kept in
/// `arena` (sized on the first batch); the forward pass of a bigger batch grows it.
public final class Network<S: Real> {
    public let config: ModelConfig
    public let layout: ParameterLayout
    public let params: Parameters<S>
    public let arena = Arena<S>()
    /// Combines batch-norm sums across ranks (one process: `LocalStatistics`).
    public var statistics: StatisticsSync = LocalStatistics()
    /// Set to time each section of the passes.
    public var profile: Profile?
    /// Use Winograd F(2×2, 3×3) for VGGish's 3×3 convolutions after the first (2.25× fewer
    /// multiplies). Float defaults to it; Double keeps the direct algorithm as the reference.
    public var winograd: Bool = S.self == Float.self

    /// `body`, as a section of `profile` when there is one (`--breakdown`).
    @inline(__always)
    public func timed<T>(_ name: String, _ body: () -> T) -> T {
        guard let profile else { return body() }
        return profile.measure(name, body)
    }

    let vggish: VGGishBranch?
    let yamnet: YAMNetTrunk?
    let tapA, tapB, tapC: ConvLayer?
    let fuse: ConvLayer
    let mapH, mapW, vChannels, yChannels, zChannels, flat, dense, classes: Int

    // Results of the last forward pass.
    public private(set) var batch = 0
    private var bnMode: BatchNormMode = .moving

    public init(config: ModelConfig) throws {
        try config.validate()
        self.config = config
        let mapH = config.mapHeight, mapW = config.mapWidth
        self.mapH = mapH
        self.mapW = mapW
        classes = config.classes
        var layout = ParameterLayout()
        // Declaration order = flat-buffer order. Backward finishes the head first, then YAMNet,
        // then the taps and VGGish: the reverse of this order, so finished gradients form one
        // growing suffix of the buffer (what bucketed allreduce wants).
        if config.hasVGGish {
            let v = VGGishBranch(config)
            v.declare(&layout)
            vggish = v
            let tc = config.channels(config.tapChannels)
            func tap(_ n: String, _ cin: Int) -> ConvLayer {
                ConvLayer(name: "fusion/" + n, g: ConvGeometry(h: mapH, w: mapW, cin: cin, cout: tc, kh: 1, kw: 1, stride: 1), hasBias: true)
            }
            let taps = [tap("tap_a", v.tapA), tap("tap_b", v.tapB), tap("tap_c", v.tapC)]
            for t in taps { t.declare(&layout) }
            tapA = taps[0]; tapB = taps[1]; tapC = taps[2]
            vChannels = tc
        } else {
            vggish = nil; tapA = nil; tapB = nil; tapC = nil
            vChannels = 0
        }
        if config.hasYAMNet {
            let y = YAMNetTrunk(config)
            y.declare(&layout)
            yamnet = y
            yChannels = y.output.cout
        } else {
            yamnet = nil
            yChannels = 0
        }
        let zChannels = vChannels + yChannels
        self.zChannels = zChannels
        fuse = ConvLayer(name: "head/fuse_conv",
                         g: ConvGeometry(h: mapH, w: mapW, cin: zChannels, cout: config.channels(config.fuseChannels), kh: 1, kw: 1, stride: 1),
                         hasBias: true)
        fuse.declare(&layout)
        let flat = mapH * mapW * fuse.g.cout, dense = config.channels(config.denseUnits)
        self.flat = flat
        self.dense = dense
        layout.add("head/dense1/kernel", [flat, dense], .heNormal, fanIn: flat)
        layout.add("head/dense1/bias", [dense], .zeros)
        layout.add("head/logits/kernel", [dense, config.classes], .heNormal, fanIn: dense)
        layout.add("head/logits/bias", [config.classes], .zeros)
        self.layout = layout
        params = Parameters(layout: layout)
    }

    /// Input elements per sample.
    public var inputSize: Int { config.frames * config.bands }

    /// Multiply-adds ×2 of one forward pass per sample (for GFLOP/s figures).
    public var forwardFlopsPerSample: Int {
        var f = (vggish?.flopsPerSample ?? 0) + (yamnet?.flopsPerSample ?? 0)
        for t in [tapA, tapB, tapC].compactMap({ $0 }) { f += t.g.flopsPerSample }
        f += fuse.g.flopsPerSample + 2 * flat * dense + 2 * dense * classes
        return f
    }

    /// Flat range of YAMNet's trainable tensors (frozen ranges are skipped by the optimiser).
    public var yamnetRange: Range<Int>? { config.hasYAMNet ? layout.trainableRange(prefix: "yamnet/") : nil }

    /// Trainable ranges that receive gradients under this configuration.
    public var trainedRanges: [Range<Int>] {
        guard config.freezeYAMNet, let y = yamnetRange else { return [0 ..< layout.trainableCount] }
        return [0 ..< y.lowerBound, y.upperBound ..< layout.trainableCount].filter { !$0.isEmpty }
    }

    // MARK: - Chunks

    /// Sample ranges the next passes must use as chunks (the batch plan's in training, so that
    /// every GEMM has the same shape for any number of ranks); nil: one chunk per thread.
    public var chunkPlan: [Range<Int>]?
    /// The chunks of the current pass.
    public private(set) var passChunks: [Range<Int>] = []

    private func beginPass(batch: Int) {
        if let plan = chunkPlan, plan.first?.lowerBound == 0, plan.last?.upperBound == batch {
            passChunks = plan
        } else {
            let parts = max(1, min(ComputeThreads.current, batch))
            passChunks = (0..<parts).map { ($0 * batch / parts) ..< (($0 + 1) * batch / parts) }
        }
        // Per-thread workspaces are sized before any parallel region (the arena is not thread-safe).
        let largest = passChunks.map(\.count).max() ?? batch
        let need = workspaceCount(largest)
        for w in 0..<ComputeThreads.current { _ = arena.get("workspace\(w)", need) }
    }

    /// Runs `body(samples, workspace)` for every chunk of the pass, chunks in parallel.
    @inline(__always)
    func perChunk(_ body: (Range<Int>, UnsafeMutablePointer<S>) -> Void) {
        perRange(passChunks, body)
    }

    func workspaceFor(_ worker: Int) -> UnsafeMutablePointer<S> { arena.existing("workspace\(worker)") }

    // MARK: - Forward

    /// Runs the network on `batch` patches x: (B, frames, bands, 1) and returns the logits (B, classes).
    /// `bn` chooses batch or moving statistics (a frozen YAMNet always uses moving statistics);
    /// `updateStatistics` moves the moving statistics towards this batch's (training).
    @discardableResult
    @_specialize(exported: true, where S == Float)
    @_specialize(exported: true, where S == Double)
    public func forward(_ x: UnsafePointer<S>, batch: Int, bn: BatchNormMode, updateStatistics: Bool = false) -> UnsafeMutablePointer<S> {
        self.batch = batch
        self.bnMode = bn
        beginPass(batch: batch)
        let input = arena.get("x", batch * inputSize)
        if input != UnsafeMutablePointer(mutating: x) {
            perChunk { r, _ in (input + r.lowerBound * inputSize).update(from: x + r.lowerBound * inputSize, count: r.count * inputSize) }
        }
        let z = arena.get("Z", batch * mapH * mapW * zChannels)
        // YAMNet first: while its batch norms wait for the other ranks' statistics, VGGish runs
        // piece by piece (OverlapWork); without collectives VGGish simply follows.
        let (yamnetBN, overlapping) = yamnetBatchNorm(bn)
        let slices = self.slices(overlapping ? Network.overlapSlices : 1)
        let overlap = OverlapWork(vggish.map { vggishForwardPieces($0, input, batch: batch, z: z, slices: slices) } ?? [])
        if let y = yamnet {
            let out = timed("fwd yamnet") {
                y.forward(input, batch: batch, bn: yamnetBN, update: updateStatistics && !config.freezeYAMNet, context(batch, overlap: overlap))
            }
            let g = y.output, zc = zChannels, vc = vChannels, yc = yChannels, f = mapH / g.ho, perZ = mapH * mapW * zChannels
            perChunk { r, _ in
                upsampleNearest(out + r.lowerBound * g.outSize, z + r.lowerBound * perZ, batch: r.count, h: g.ho, w: g.wo, c: yc,
                                factor: f, yChannels: zc, cOffset: vc)
            }
        }
        overlap.runRest()
        return timed("fwd head") { forwardHead(z, batch: batch) }
    }

    /// YAMNet's batch-norm mode in a pass run with `mode` (a frozen YAMNet keeps its moving
    /// statistics), and whether its batch norms meet other ranks: VGGish then runs while they wait.
    private func yamnetBatchNorm(_ mode: BatchNormMode) -> (BatchNormMode, overlapping: Bool) {
        let bn: BatchNormMode = config.freezeYAMNet ? .moving : mode
        return (bn, yamnet != nil && bn == .batch && statistics.crossesProcesses)
    }

    /// Output positions per sample from which a VGGish layer runs slice by slice (24×16: conv3).
    static var slicedPositions: Int { 384 }

    /// Slices of a pass's samples when VGGish is cut into pieces to overlap YAMNet's collectives.
    /// 16 (4 samples per slice for a rank's 64) rather than 8: a slice's conv1 output (6 MB) and
    /// the layers after it then stay in the rank's share of L3, and two ranks on one machine
    /// streamed 11 ms per step less through memory in VGGish's forward (BENCHMARKS.md).
    static var overlapSlices: Int { 16 }

    /// The pass's chunks as groups that run one after another, each holding at most one range per
    /// thread. Chunks whose shapes are fixed (`chunkPlan`: deterministic training) are grouped
    /// whole, so every GEMM keeps its shape; otherwise each chunk is cut into `parts`.
    func slices(_ parts: Int) -> [[Range<Int>]] {
        guard parts > 1 else { return [passChunks] }
        if chunkPlan != nil {
            let threads = max(1, ComputeThreads.current)
            return stride(from: 0, to: passChunks.count, by: threads).map { Array(passChunks[$0 ..< min($0 + threads, passChunks.count)]) }
        }
        return (0..<parts).map { p in
            passChunks.map { r in (r.lowerBound + p * r.count / parts) ..< (r.lowerBound + (p + 1) * r.count / parts) }.filter { !$0.isEmpty }
        }.filter { !$0.isEmpty }
    }

    /// Runs `body(samples, workspace)` for each of `ranges`, in parallel.
    @inline(__always)
    func perRange(_ ranges: [Range<Int>], _ body: (Range<Int>, UnsafeMutablePointer<S>) -> Void) {
        perRange(ranges) { _, r, ws in body(r, ws) }
    }

    /// The same, with each range's index in `ranges`.
    @inline(__always)
    func perRange(_ ranges: [Range<Int>], _ body: (Int, Range<Int>, UnsafeMutablePointer<S>) -> Void) {
        ComputeThreads.parallelChunks(ranges.count) { i, w in body(i, ranges[i], workspaceFor(w)) }
    }

    /// Where a VGGish layer's output for one range of a slice lives: at the range's samples in a
    /// buffer of the whole pass, or, for a conv read only by the pool after it in the same slice,
    /// in a scratch of one slice reused slice after slice (`rangeStride` apart per range), which
    /// stays in cache instead of going out to memory and back.
    struct Place {
        let base: UnsafeMutablePointer<S>
        let perSample: Int
        let rangeStride: Int?
        func at(_ index: Int, _ r: Range<Int>) -> UnsafeMutablePointer<S> {
            rangeStride.map { base + index * $0 } ?? base + r.lowerBound * perSample
        }
    }

    /// Conv outputs that the last pass kept only slice by slice (not scanned for non-finite values).
    private var sliceScratch: Set<String> = []

    /// VGGish and its taps as pieces, each one layer over one slice of the samples, slice after
    /// slice (every sample's path through VGGish is independent of the others').
    private func vggishForwardPieces(_ v: VGGishBranch, _ x: UnsafePointer<S>, batch: Int, z: UnsafeMutablePointer<S>,
                                     slices: [[Range<Int>]]) -> [() -> Void] {
        // Every buffer is taken before any piece runs: pieces run inside YAMNet's pass.
        typealias Layer = ([Range<Int>]) -> Void
        // Each layer: where its output lives, its output positions per sample, and the computation.
        typealias Step = (Place, Int, Layer)
        // conv1's and conv2's outputs are read only by the pools after them (whose backward uses
        // their arg-max bytes), so when the pass runs in slices they need only one slice's room.
        sliceScratch = slices.count > 1 ? ["c1", "c2"] : []
        let sliceRanges = slices.map(\.count).max() ?? 1, sliceSamples = slices.flatMap { $0.map(\.count) }.max() ?? 1
        func output(_ key: String, _ perSample: Int) -> Place {
            if sliceScratch.contains(key) {
                return Place(base: arena.get(key + " slice", sliceRanges * sliceSamples * perSample), perSample: perSample,
                             rangeStride: sliceSamples * perSample)
            }
            return Place(base: arena.get(key, batch * perSample), perSample: perSample, rangeStride: nil)
        }
        func conv(_ l: ConvLayer, _ input: Place, _ key: String) -> Step {
            let out = output(key, l.g.outSize)
            let k = params.value(l.kernel), b = params.value(l.bias), g = l.g, wino = useWinograd(l.g)
            let u = wino ? kernelTransform(l) : nil
            var transformed = false
            return (out, g.outPositions, { ranges in
                self.timed("fwd " + l.name) {
                    if let u, !transformed { winogradTransformKernel(k, into: u, g, rotate: false); transformed = true }
                    self.perRange(ranges) { i, r, ws in
                        let xi = input.at(i, r), yo = out.at(i, r)
                        if let u {
                            winogradForward(xi, transformed: u, b, yo, batch: r.count, g, relu: true, workspace: ws)
                        } else {
                            convForward(xi, k, b, yo, batch: r.count, g, relu: true, workspace: ws)
                        }
                    }
                }
            })
        }
        func pool(_ input: Place, _ g: ConvGeometry, _ key: String) -> Step {
            let out = output(key, g.outSize / 4), argmax = arena.indices(argmaxKey(key), batch * g.outSize / 4)
            return (out, g.outPositions / 4, { ranges in
                self.timed("fwd maxpool") {
                    self.perRange(ranges) { i, r, _ in
                        let o = r.lowerBound * g.outSize / 4
                        maxPool2Forward(input.at(i, r), out.at(i, r), indices: argmax + o, batch: r.count, h: g.ho, w: g.wo, c: g.cout, relu: true)
                    }
                }
            })
        }
        // Early layers (large maps) run slice by slice; from pool 3 on the maps are 12×8 or less and
        // a slice's GEMMs would be too small for full speed, so those layers run on whole chunks.
        var sliced: [Layer] = [], whole: [Layer] = []
        func add(_ step: Step) -> Place {
            if step.1 >= Network.slicedPositions && whole.isEmpty { sliced.append(step.2) } else { whole.append(step.2) }
            return step.0
        }
        let input = Place(base: UnsafeMutablePointer(mutating: x), perSample: inputSize, rangeStride: nil)
        let c1 = add(conv(v.conv1, input, "c1"))
        let p1 = add(pool(c1, v.conv1.g, "p1"))
        let c2 = add(conv(v.conv2, p1, "c2"))
        let pooledA = add(pool(c2, v.conv2.g, "A"))
        let c31 = add(conv(v.conv3_1, pooledA, "c31"))
        let c32 = add(conv(v.conv3_2, c31, "c32"))
        let pooledB = add(pool(c32, v.conv3_2.g, "B"))
        let c41 = add(conv(v.conv4_1, pooledB, "c41"))
        let c42 = add(conv(v.conv4_2, c41, "c42"))
        let a = pooledA.base, b = pooledB.base, c = add(pool(c42, v.conv4_2.g, "C")).base

        // Tap fusion: the three 1×1 convolutions accumulate into one map, then bias and ReLU.
        let cells = mapH * mapW
        let aA = arena.get("aA", batch * cells * v.tapA), aB = arena.get("aB", batch * cells * v.tapB)
        let vmap = arena.get("V", batch * cells * vChannels)
        let bias = arena.get("tapbias", vChannels)
        for ch in 0..<vChannels { bias[ch] = params.value(tapA!.bias)[ch] + params.value(tapB!.bias)[ch] + params.value(tapC!.bias)[ch] }
        let ka = params.value(tapA!.kernel), kb = params.value(tapB!.kernel), kc = params.value(tapC!.kernel)
        let vc = vChannels, zc = zChannels, gA = v.conv2.g, gB = v.conv3_2.g, mh = mapH
        let aSize = gA.outSize / 4, bSize = gB.outSize / 4, cSize = v.conv4_2.g.outSize / 4
        whole.append { ranges in
            self.timed("fwd taps") {
                self.perRange(ranges) { r, _ in
                    let n = r.count, o = r.lowerBound, rows = n * cells
                    let aAo = aA + o * cells * v.tapA, aBo = aB + o * cells * v.tapB, vo = vmap + o * cells * vc
                    avgPoolForward(a + o * aSize, aAo, batch: n, h: gA.ho / 2, w: gA.wo / 2, c: v.tapA, k: (gA.ho / 2) / mh)
                    avgPoolForward(b + o * bSize, aBo, batch: n, h: gB.ho / 2, w: gB.wo / 2, c: v.tapB, k: (gB.ho / 2) / mh)
                    S.gemm(false, false, rows, vc, v.tapA, 1, aAo, v.tapA, ka, vc, 0, vo, vc)
                    S.gemm(false, false, rows, vc, v.tapB, 1, aBo, v.tapB, kb, vc, 1, vo, vc)
                    S.gemm(false, false, rows, vc, v.tapC, 1, c + o * cSize, v.tapC, kc, vc, 1, vo, vc)
                    biasRelu(vo, bias, rows: rows, channels: vc, relu: true)
                    copyChannels(vo, z + o * cells * zc, rows: rows, c: vc, yChannels: zc, cOffset: 0)
                }
            }
        }
        let chunks = passChunks
        return slices.flatMap { slice in sliced.map { layer in { layer(slice) } } } + whole.map { layer in { layer(chunks) } }
    }

    private func forwardHead(_ z: UnsafePointer<S>, batch: Int) -> UnsafeMutablePointer<S> {
        let f = arena.get("F", batch * flat)
        let d = arena.get("D", batch * dense)
        let logits = arena.get("logits", batch * classes)
        let fk = params.value(fuse.kernel), fb = params.value(fuse.bias), fg = fuse.g
        let w1 = params.value("head/dense1/kernel"), b1 = params.value("head/dense1/bias")
        let w2 = params.value("head/logits/kernel"), b2 = params.value("head/logits/bias")
        let flat = self.flat, dense = self.dense, classes = self.classes, perZ = mapH * mapW * zChannels
        perChunk { r, ws in
            let o = r.lowerBound, n = r.count
            convForward(z + o * perZ, fk, fb, f + o * flat, batch: n, fg, relu: true, workspace: ws)
            denseForward(f + o * flat, w1, b1, d + o * dense, batch: n, inputs: flat, outputs: dense, relu: true)
            denseForward(d + o * dense, w2, b2, logits + o * classes, batch: n, inputs: dense, outputs: classes, relu: false)
        }
        return logits
    }

    /// Samples over which batch norm takes statistics when the batch is split over ranks.
    public var globalBatchOverride: Int?
    func statisticsBatch(_ local: Int) -> Int { globalBatchOverride ?? local }

    func context(_ batch: Int, overlap: OverlapWork? = nil) -> PassContext<S> {
        PassContext(params: params, arena: arena, statistics: statistics, config: config,
                    statisticsBatch: statisticsBatch(batch), chunks: passChunks, profile: profile, overlap: overlap)
    }

    func useWinograd(_ g: ConvGeometry) -> Bool { winograd && winogradApplies(g) }

    /// A Winograd layer's kernel transform for this pass, shared by all its chunks and slices: the
    /// forward's, then in the backward pass the rotated one for the input gradient.
    /// Layers that run slice by slice interleave, so each keeps its own; the others (conv4: 57 MB
    /// between them) run one after another and share one buffer.
    func kernelTransform(_ l: ConvLayer) -> UnsafeMutablePointer<S> {
        if l.g.outPositions >= Network.slicedPositions { return arena.get("winograd U:" + l.name, winogradKernelCount(l.g)) }
        let shared = (vggish?.convs ?? []).filter { useWinograd($0.g) && $0.g.outPositions < Network.slicedPositions }
        return arena.get("winograd U", shared.map { winogradKernelCount($0.g) }.max() ?? 1)
    }

    /// Workspace elements one thread needs for a chunk of `batch` samples.
    private func workspaceCount(_ batch: Int) -> Int {
        var need = 1
        for l in (vggish?.convs ?? []) {
            need = max(need, useWinograd(l.g) ? winogradWorkspaceCount(l.g, batch: batch) : convWorkspaceCount(l.g, batch, MemoryLayout<S>.stride))
        }
        for l in (yamnet?.layers ?? []) where l.kind == .regular { need = max(need, convWorkspaceCount(l.g, batch, MemoryLayout<S>.stride)) }
        need = max(need, convWorkspaceCount(fuse.g, batch, MemoryLayout<S>.stride))
        return need
    }

    // MARK: - Diagnostics

    /// Stored activations in forward order: (arena key, layer name, elements per sample).
    var forwardActivations: [(String, String, Int)] {
        var list: [(String, String, Int)] = [("x", "input", inputSize)]
        if let v = vggish {
            list += [("c1", v.conv1.name, v.conv1.g.outSize), ("p1", "vggish/pool1", v.conv1.g.outSize / 4),
                     ("c2", v.conv2.name, v.conv2.g.outSize), ("A", "vggish/pool2 (tap A)", v.conv2.g.outSize / 4),
                     ("c31", v.conv3_1.name, v.conv3_1.g.outSize), ("c32", v.conv3_2.name, v.conv3_2.g.outSize),
                     ("B", "vggish/pool3 (tap B)", v.conv3_2.g.outSize / 4),
                     ("c41", v.conv4_1.name, v.conv4_1.g.outSize), ("c42", v.conv4_2.name, v.conv4_2.g.outSize),
                     ("C", "vggish/pool4 (tap C)", v.conv4_2.g.outSize / 4), ("V", "fusion/taps (V)", mapH * mapW * vChannels)]
        }
        if let t = yamnet {
            for l in t.layers { list.append((l.key, String(l.kernel.split(separator: "/").dropLast().joined(separator: "/")), l.g.outSize)) }
        }
        list += [("Z", "head/concat (Z)", mapH * mapW * zChannels), ("F", fuse.name, flat),
                 ("D", "head/dense1", dense), ("logits", "head/logits", classes)]
        return list
    }

    /// The first layer of the last forward pass whose output holds NaN or ±∞ (nil: none).
    public func firstNonFiniteActivation() -> String? {
        for (key, name, perSample) in forwardActivations where arena.has(key) && !sliceScratch.contains(key) {
            let p = arena.existing(key)
            for i in 0..<(batch * perSample) where !p[i].isFinite { return name }
        }
        return nil
    }

    /// The first parameter tensor holding NaN or ±∞ (nil: none).
    public func firstNonFiniteParameter() -> String? {
        for spec in layout.specs {
            let p = params.value(spec.name)
            for i in 0..<spec.count where !p[i].isFinite { return spec.name }
        }
        return nil
    }

    // MARK: - Activations for explanations

    /// The stored activation at `tap` from the last forward pass, and its per-sample shape (H, W, C).
    public func activation(_ tap: Tap) -> (values: UnsafeMutablePointer<S>, h: Int, w: Int, c: Int)? {
        switch tap {
        case .fused: return (arena.existing("Z"), mapH, mapW, zChannels)
        case .vggishA: return vggish.map { (arena.existing("A"), $0.conv2.g.ho / 2, $0.conv2.g.wo / 2, $0.tapA) }
        case .vggishB: return vggish.map { (arena.existing("B"), $0.conv3_2.g.ho / 2, $0.conv3_2.g.wo / 2, $0.tapB) }
        case .vggishC: return vggish.map { (arena.existing("C"), $0.conv4_2.g.ho / 2, $0.conv4_2.g.wo / 2, $0.tapC) }
        case .yamnet: return yamnet.map { (arena.existing($0.layers.last!.key), $0.output.ho, $0.output.wo, $0.output.cout) }
        }
    }

    /// Taps this architecture has.
    public var taps: [Tap] {
        Tap.allCases.filter { tap in
            switch tap {
            case .fused: return true
            case .vggishA, .vggishB, .vggishC: return config.hasVGGish
            case .yamnet: return config.hasYAMNet
            }
        }
    }

    // MARK: - Backward

    /// Backpropagates `dlogits` (B, classes) through the last forward pass.
    ///
    /// - `sink`: where parameter gradients go (nil: compute only activation gradients, e.g. Grad-CAM).
    /// - `stopAt`: return as soon as the gradient at this tap is complete (Grad-CAM).
    /// - `inputGradient`: also compute d/dx (B, frames, bands, 1), stored as `inputGradient`.
    /// Returns the gradient at `stopAt`, if given.
    @discardableResult
    @_specialize(exported: true, where S == Float)
    @_specialize(exported: true, where S == Double)
    public func backward(_ dlogits: UnsafePointer<S>, sink: GradientSink<S>?, stopAt: Tap? = nil,
                         inputGradient: Bool = false) -> UnsafeMutablePointer<S>? {
        let batch = self.batch
        let cells = mapH * mapW
        let flat = self.flat, dense = self.dense, classes = self.classes, zc = zChannels, vc = vChannels
        // Head.
        let d = arena.existing("D"), f = arena.existing("F"), z = arena.existing("Z")
        let dD = arena.get("dD", batch * dense), dF = arena.get("dF", batch * flat), dZ = arena.get("dZ", batch * cells * zc)
        let w1 = params.value("head/dense1/kernel"), w2 = params.value("head/logits/kernel"), fk = params.value(fuse.kernel), fg = fuse.g
        timed("bwd head") {
            weightGrads(sink, "head/logits/kernel", "head/logits/bias") { r, _, dw, db in
                denseBackwardWeights(d + r.lowerBound * dense, dlogits + r.lowerBound * classes, dw, db, batch: r.count, inputs: dense, outputs: classes)
            }
            perChunk { r, _ in
                let o = r.lowerBound, n = r.count
                denseBackwardData(dlogits + o * classes, w2, dD + o * dense, batch: n, inputs: dense, outputs: classes)
                reluBackward(dD + o * dense, d + o * dense, count: n * dense)
            }
            weightGrads(sink, "head/dense1/kernel", "head/dense1/bias") { r, _, dw, db in
                denseBackwardWeights(f + r.lowerBound * flat, dD + r.lowerBound * dense, dw, db, batch: r.count, inputs: flat, outputs: dense)
            }
            perChunk { r, _ in
                let o = r.lowerBound, n = r.count
                denseBackwardData(dD + o * dense, w1, dF + o * flat, batch: n, inputs: flat, outputs: dense)
                reluBackward(dF + o * flat, f + o * flat, count: n * flat)
            }
            weightGrads(sink, fuse.kernel, fuse.bias) { r, w, dw, db in
                convBackwardWeights(z + r.lowerBound * cells * zc, dF + r.lowerBound * flat, dw, db, batch: r.count, fg, workspace: self.workspaceFor(w))
            }
            perChunk { r, ws in
                convBackwardData(dF + r.lowerBound * flat, fk, dZ + r.lowerBound * cells * zc, batch: r.count, fg, workspace: ws)
            }
        }
        if stopAt == .fused { return dZ }

        // VGGish needs only dZ. In multi-rank training its backward runs layer by layer while
        // YAMNet's batch norms wait for the other ranks' gradient sums, a fixed share at each
        // (`OverlapWork.runShare`): the sums then have a VGGish layer's time to arrive.
        // The pieces post gradient buckets in the same order on every rank, wherever they run:
        // VGGish and the taps lie below YAMNet in the flat buffer, so the finished suffix reaches
        // their tensors only once YAMNet's last one is done, after its last collective.
        let vggishWork = stopAt == .yamnet ? nil : vggish.map {
            vggishBackwardPieces($0, dZ: dZ, sink: sink, stopAt: stopAt, inputGradient: inputGradient)
        }
        let vggishPieces = OverlapWork(vggishWork?.pieces ?? [], costs: vggishWork?.costs)

        // YAMNet branch.
        if let t = yamnet {
            let frozen = config.freezeYAMNet
            let needed = stopAt == .yamnet || inputGradient || (!frozen && sink != nil)
            if needed {
                let g = t.output, yc = yChannels, factor = mapH / g.ho
                let dY = arena.get("d:" + t.layers.last!.key, batch * g.outSize)
                perChunk { r, _ in
                    upsampleNearestBackward(dZ + r.lowerBound * cells * zc, dY + r.lowerBound * g.outSize, batch: r.count, h: g.ho, w: g.wo,
                                            c: yc, factor: factor, yChannels: zc, cOffset: vc)
                }
                if stopAt == .yamnet { return dY }
                let (bn, overlapping) = yamnetBatchNorm(bnMode)
                timed("bwd yamnet") {
                    t.backward(dY, batch: batch, bn: bn, sink: frozen ? nil : sink,
                               inputGradient: inputGradient, context(batch, overlap: overlapping ? vggishPieces : nil))
                }
            }
            if frozen, let sink, let range = yamnetRange { sink.zero(offset: range.lowerBound, count: range.count) }
        }

        // VGGish branch: whatever did not run inside YAMNet's pass.
        vggishPieces.runRest()
        if let stop = vggishWork?.stop { return stop }
        if inputGradient {
            let n = batch * inputSize
            let dxv = vggish != nil ? arena.existing("dxv") : nil
            let dxy = config.hasYAMNet && arena.has("dxy") ? arena.existing("dxy") : nil
            if let dxv, let dxy {
                let total = arena.get("inputGradient", n)
                for i in 0..<n { total[i] = dxv[i] + dxy[i] }
            } else if let one = dxv ?? dxy {
                arena.get("inputGradient", n).update(from: one, count: n)
            }
        }
        return nil
    }

    /// VGGish's and its taps' backward pass as pieces to run in order, each one layer's step over
    /// the pass's chunks, with an estimate of each one's cost (multiply-adds ×2; an element a
    /// memory-bound step reads and writes counts as 100, about as long on these cores), and the
    /// gradient at `stopAt` when it is one of VGGish's taps (the pieces then end there). Every
    /// buffer is taken here, before any piece runs inside YAMNet's pass.
    private func vggishBackwardPieces(_ v: VGGishBranch, dZ: UnsafeMutablePointer<S>, sink: GradientSink<S>?, stopAt: Tap?,
                                      inputGradient: Bool) -> (pieces: [() -> Void], costs: [Double], stop: UnsafeMutablePointer<S>?) {
        let batch = self.batch, cells = mapH * mapW, zc = zChannels, vc = vChannels, mh = mapH
        let dV = arena.get("dV", batch * cells * vc)
        let vmap = arena.existing("V")
        let aA = arena.existing("aA"), aB = arena.existing("aB"), c = arena.existing("C")
        let gA = v.conv2.g, gB = v.conv3_2.g
        let aSize = gA.outSize / 4, bSize = gB.outSize / 4, cSize = v.conv4_2.g.outSize / 4
        let dC = arena.get("dC", batch * cSize)
        let dA = arena.get("dA", batch * aSize), dB = arena.get("dB", batch * bSize)
        let daA = arena.get("daA", batch * cells * v.tapA), daB = arena.get("daB", batch * cells * v.tapB)
        let tapA = self.tapA!, tapB = self.tapB!, tapC = self.tapC!
        let ka = params.value(tapA.kernel), kb = params.value(tapB.kernel), kc = params.value(tapC.kernel)
        var pieces: [() -> Void] = [], costs: [Double] = []
        func add(_ cost: Int, _ piece: @escaping () -> Void) {
            pieces.append(piece)
            costs.append(Double(cost))
        }
        let tapCost = 3 * [tapA, tapB, tapC].map(\.g.flopsPerSample).reduce(0, +) + 100 * cells * vc
        add(tapCost) {
            self.timed("bwd taps") {
                self.perChunk { r, _ in
                    let o = r.lowerBound * cells, rows = r.count * cells
                    extractChannels(dZ + o * zc, dV + o * vc, rows: rows, c: vc, yChannels: zc, cOffset: 0)
                    reluBackward(dV + o * vc, vmap + o * vc, count: rows * vc)
                }
                let taps: [(ConvLayer, UnsafeMutablePointer<S>, Int)] = [(tapC, c, v.tapC), (tapB, aB, v.tapB), (tapA, aA, v.tapA)]
                for (tap, input, cin) in taps {
                    self.weightGrads(sink, tap.kernel, tap.bias) { r, _, dw, db in
                        let off = r.lowerBound * cells
                        S.gemm(true, false, cin, vc, r.count * cells, 1, input + off * cin, cin, dV + off * vc, vc, 0, dw, vc)
                        columnSums(dV + off * vc, db, rows: r.count * cells, channels: vc)
                    }
                }
                self.perChunk { r, _ in
                    let o = r.lowerBound, n = r.count, rows = n * cells
                    let dVo = dV + o * cells * vc
                    S.gemm(false, true, rows, v.tapC, vc, 1, dVo, vc, kc, vc, 0, dC + o * cSize, v.tapC)
                    // Gradients reaching A and B from the taps; the conv chain adds to them below.
                    S.gemm(false, true, rows, v.tapA, vc, 1, dVo, vc, ka, vc, 0, daA + o * cells * v.tapA, v.tapA)
                    S.gemm(false, true, rows, v.tapB, vc, 1, dVo, vc, kb, vc, 0, daB + o * cells * v.tapB, v.tapB)
                    (dA + o * aSize).update(repeating: 0, count: n * aSize)
                    (dB + o * bSize).update(repeating: 0, count: n * bSize)
                    avgPoolBackwardAdd(daA + o * cells * v.tapA, dA + o * aSize, batch: n, h: gA.ho / 2, w: gA.wo / 2, c: v.tapA, k: (gA.ho / 2) / mh)
                    avgPoolBackwardAdd(daB + o * cells * v.tapB, dB + o * bSize, batch: n, h: gB.ho / 2, w: gB.wo / 2, c: v.tapB, k: (gB.ho / 2) / mh)
                }
            }
        }
        if stopAt == .vggishC { return (pieces, costs, dC) }

        let g1 = arena.get("grad1", batch * v.conv1.g.outSize), g2 = arena.get("grad2", batch * v.conv1.g.outSize)
        // Through a max pool and the ReLU before it: the gradient at the conv's output, into g1.
        func poolBack(_ dPooled: UnsafePointer<S>, _ l: ConvLayer, outKey: String) {
            let argmax = arena.indices(argmaxKey(poolKey(outKey)), batch * l.g.outSize / 4), g = l.g
            add(100 * g.outSize) {
                self.timed("bwd maxpool+relu") {
                    self.perChunk { r, _ in
                        let o = r.lowerBound
                        maxPool2Backward(dPooled + o * g.outSize / 4, indices: argmax + o * g.outSize / 4, g1 + o * g.outSize,
                                         batch: r.count, h: g.ho, w: g.wo, c: g.cout)
                    }
                }
            }
        }
        // A conv's weight gradient from (input, dy), and its input gradient into `into` (added if `accumulate`).
        func convBack(_ l: ConvLayer, dy: UnsafeMutablePointer<S>, inKey: String, into: UnsafeMutablePointer<S>?, accumulate: Bool) {
            let input = arena.existing(inKey), g = l.g, wino = useWinograd(l.g), k = params.value(l.kernel)
            add(g.flopsPerSample) {
                self.timed("bwdW " + l.name) {
                    self.weightGrads(sink, l.kernel, l.bias) { r, w, dw, db in
                        let xi = input + r.lowerBound * g.inSize, dyo = dy + r.lowerBound * g.outSize
                        if wino {
                            winogradBackwardWeights(xi, dyo, dw, db, batch: r.count, g, workspace: self.workspaceFor(w))
                        } else {
                            convBackwardWeights(xi, dyo, dw, db, batch: r.count, g, workspace: self.workspaceFor(w))
                        }
                    }
                }
            }
            guard let into else { return }
            let u = wino ? kernelTransform(l) : nil
            add(g.flopsPerSample + (accumulate ? 100 * g.inSize : 0)) {
                self.timed("bwdX " + l.name) {
                    if let u { winogradTransformKernel(k, into: u, g, rotate: true) }
                    self.perChunk { r, ws in
                        let o = r.lowerBound, n = r.count
                        let target = (accumulate ? g2 : into) + o * g.inSize
                        if let u {
                            winogradBackwardData(dy + o * g.outSize, transformed: u, target, batch: n, g, workspace: ws)
                        } else {
                            convBackwardData(dy + o * g.outSize, k, target, batch: n, g, workspace: ws)
                        }
                        if accumulate {
                            let dst = into + o * g.inSize, src = g2 + o * g.inSize
                            for i in 0..<(n * g.inSize) { dst[i] += src[i] }
                        }
                    }
                }
            }
        }
        // A conv whose output feeds the next conv directly: ReLU's backward on dy in place.
        func reluIn(_ dy: UnsafeMutablePointer<S>, _ key: String, _ size: Int) {
            let y = arena.existing(key)
            add(100 * size) {
                self.perChunk { r, _ in reluBackward(dy + r.lowerBound * size, y + r.lowerBound * size, count: r.count * size) }
            }
        }
        // A two-conv block, pooled output ← second ← first ← input: the gradient at its input is
        // added to `into` (the tap's share is already there).
        func blockBack(_ dPooled: UnsafePointer<S>, _ second: ConvLayer, _ first: ConvLayer,
                       outKey: String, midKey: String, inKey: String, into: UnsafeMutablePointer<S>) {
            let dMid = arena.get("d" + midKey, batch * first.g.outSize)
            poolBack(dPooled, second, outKey: outKey)
            convBack(second, dy: g1, inKey: midKey, into: dMid, accumulate: false)
            reluIn(dMid, midKey, first.g.outSize)
            convBack(first, dy: dMid, inKey: inKey, into: into, accumulate: true)
        }
        blockBack(dC, v.conv4_2, v.conv4_1, outKey: "c42", midKey: "c41", inKey: "B", into: dB)
        if stopAt == .vggishB { return (pieces, costs, dB) }
        blockBack(dB, v.conv3_2, v.conv3_1, outKey: "c32", midKey: "c31", inKey: "A", into: dA)
        if stopAt == .vggishA { return (pieces, costs, dA) }
        // A ← conv2 ← p1 ← conv1 ← x
        let dp1 = arena.get("dp1", batch * v.conv2.g.inSize)
        poolBack(dA, v.conv2, outKey: "c2")
        convBack(v.conv2, dy: g1, inKey: "p1", into: dp1, accumulate: false)
        poolBack(dp1, v.conv1, outKey: "c1")
        let dx = inputGradient ? arena.get("dxv", batch * inputSize) : nil
        convBack(v.conv1, dy: g1, inKey: "x", into: dx, accumulate: false)
        return (pieces, costs, nil)
    }

    /// Where the max pool writing `poolKey` records its arg-max indices.
    private func argmaxKey(_ poolKey: String) -> String { "argmax:" + poolKey }

    private func poolKey(_ convKey: String) -> String {
        switch convKey {
        case "c1": return "p1"
        case "c2": return "A"
        case "c32": return "B"
        case "c42": return "C"
        default: preconditionFailure("no pool after \(convKey)")
        }
    }

    /// Runs `compute(samples, worker, dKernel, dBias)` per chunk into the sink (nothing without a sink).
    private func weightGrads(_ sink: GradientSink<S>?, _ kernel: String, _ bias: String,
                             _ compute: (Range<Int>, Int, UnsafeMutablePointer<S>, UnsafeMutablePointer<S>) -> Void) {
        guard let sink else { return }
        let kc = layout.spec(kernel)!.count, bc = layout.spec(bias)!.count
        let ko = layout.offsets[kernel]!, bo = layout.offsets[bias]!
        // Kernel and bias are adjacent in the flat buffer: one chunked computation covers both.
        precondition(bo == ko + kc, "\(bias) must follow \(kernel) in the layout")
        sink.accumulate(offset: ko, count: kc + bc) { r, w, out in compute(r, w, out, out + kc) }
    }
}
