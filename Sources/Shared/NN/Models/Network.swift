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

    @inline(__always)
    func timed<T>(_ name: String, _ body: () -> T) -> T {
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
        let input = arena.get("x", batch * inputSize)
        if input != UnsafeMutablePointer(mutating: x) { input.update(from: x, count: batch * inputSize) }
        let z = arena.get("Z", batch * mapH * mapW * zChannels)
        if let v = vggish { forwardVGGish(v, input, batch: batch, z: z) }
        if let y = yamnet {
            let mode: BatchNormMode = config.freezeYAMNet ? .moving : bn
            let out = timed("fwd yamnet") { y.forward(input, batch: batch, bn: mode, update: updateStatistics && !config.freezeYAMNet, context(batch)) }
            let g = y.output
            upsampleNearest(out, z, batch: batch, h: g.ho, w: g.wo, c: yChannels, factor: mapH / g.ho,
                            yChannels: zChannels, cOffset: vChannels)
        }
        return timed("fwd head") { forwardHead(z, batch: batch) }
    }

    private func forwardVGGish(_ v: VGGishBranch, _ x: UnsafePointer<S>, batch: Int, z: UnsafeMutablePointer<S>) {
        let ws = workspace(batch)
        func conv(_ l: ConvLayer, _ input: UnsafePointer<S>, _ key: String) -> UnsafeMutablePointer<S> {
            let out = arena.get(key, batch * l.g.outSize)
            timed("fwd " + l.name) {
                if useWinograd(l.g) {
                    winogradForward(input, params.value(l.kernel), params.value(l.bias), out, batch: batch, l.g, relu: true, workspace: ws)
                } else {
                    convForward(input, params.value(l.kernel), params.value(l.bias), out, batch: batch, l.g, relu: true, workspace: ws)
                }
            }
            return out
        }
        func pool(_ input: UnsafePointer<S>, _ g: ConvGeometry, _ key: String) -> UnsafeMutablePointer<S> {
            let out = arena.get(key, batch * g.outSize / 4)
            timed("fwd maxpool") { maxPool2Forward(input, out, batch: batch, h: g.ho, w: g.wo, c: g.cout) }
            return out
        }
        let c1 = conv(v.conv1, x, "c1")
        let p1 = pool(c1, v.conv1.g, "p1")
        let c2 = conv(v.conv2, p1, "c2")
        let a = pool(c2, v.conv2.g, "A")
        let c31 = conv(v.conv3_1, a, "c31")
        let c32 = conv(v.conv3_2, c31, "c32")
        let b = pool(c32, v.conv3_2.g, "B")
        let c41 = conv(v.conv4_1, b, "c41")
        let c42 = conv(v.conv4_2, c41, "c42")
        let c = pool(c42, v.conv4_2.g, "C")

        // Tap fusion: the three 1×1 convolutions accumulate into one map, then bias and ReLU.
        let rows = batch * mapH * mapW
        let aA = arena.get("aA", rows * v.tapA), aB = arena.get("aB", rows * v.tapB)
        avgPoolForward(a, aA, batch: batch, h: v.conv2.g.ho / 2, w: v.conv2.g.wo / 2, c: v.tapA, k: (v.conv2.g.ho / 2) / mapH)
        avgPoolForward(b, aB, batch: batch, h: v.conv3_2.g.ho / 2, w: v.conv3_2.g.wo / 2, c: v.tapB, k: (v.conv3_2.g.ho / 2) / mapH)
        let vmap = arena.get("V", rows * vChannels)
        S.gemm(false, false, rows, vChannels, v.tapA, 1, aA, v.tapA, params.value(tapA!.kernel), vChannels, 0, vmap, vChannels)
        S.gemm(false, false, rows, vChannels, v.tapB, 1, aB, v.tapB, params.value(tapB!.kernel), vChannels, 1, vmap, vChannels)
        S.gemm(false, false, rows, vChannels, v.tapC, 1, c, v.tapC, params.value(tapC!.kernel), vChannels, 1, vmap, vChannels)
        let bias = arena.get("tapbias", vChannels)
        for ch in 0..<vChannels { bias[ch] = params.value(tapA!.bias)[ch] + params.value(tapB!.bias)[ch] + params.value(tapC!.bias)[ch] }
        biasRelu(vmap, bias, rows: rows, channels: vChannels, relu: true)
        copyChannels(vmap, z, rows: rows, c: vChannels, yChannels: zChannels, cOffset: 0)
    }

    private func forwardHead(_ z: UnsafePointer<S>, batch: Int) -> UnsafeMutablePointer<S> {
        let f = arena.get("F", batch * flat)
        convForward(z, params.value(fuse.kernel), params.value(fuse.bias), f, batch: batch, fuse.g, relu: true, workspace: workspace(batch))
        let d = arena.get("D", batch * dense)
        denseForward(f, params.value("head/dense1/kernel"), params.value("head/dense1/bias"), d, batch: batch, inputs: flat, outputs: dense, relu: true)
        let logits = arena.get("logits", batch * classes)
        denseForward(d, params.value("head/logits/kernel"), params.value("head/logits/bias"), logits, batch: batch, inputs: dense, outputs: classes, relu: false)
        return logits
    }

    /// Samples in the batch whose statistics batch norm uses (the global batch in training).
    /// Samples over which batch norm takes statistics when the batch is split over ranks.
    public var globalBatchOverride: Int?
    func statisticsBatch(_ local: Int) -> Int { globalBatchOverride ?? local }

    func context(_ batch: Int) -> PassContext<S> {
        PassContext(params: params, arena: arena, statistics: statistics, config: config,
                    statisticsBatch: statisticsBatch(batch), workspace: workspace(batch), profile: profile)
    }

    func useWinograd(_ g: ConvGeometry) -> Bool { winograd && winogradApplies(g) }

    private func workspace(_ batch: Int) -> UnsafeMutablePointer<S> {
        var need = 1
        for l in (vggish?.convs ?? []) {
            need = max(need, useWinograd(l.g) ? winogradWorkspaceCount(l.g, batch: batch) : convWorkspaceCount(l.g, batch, MemoryLayout<S>.stride))
        }
        for l in (yamnet?.layers ?? []) where l.kind == .regular { need = max(need, convWorkspaceCount(l.g, batch, MemoryLayout<S>.stride)) }
        return arena.get("workspace", need)
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
        for (key, name, perSample) in forwardActivations where arena.has(key) {
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
        let rows = batch * mapH * mapW
        // Head.
        let d = arena.existing("D"), f = arena.existing("F"), z = arena.existing("Z")
        let dD = arena.get("dD", batch * dense)
        weightGrads(sink, "head/logits/kernel", "head/logits/bias") { r, dw, db in
            denseBackwardWeights(d + r.lowerBound * dense, dlogits + r.lowerBound * classes, dw, db, batch: r.count, inputs: dense, outputs: classes)
        }
        denseBackwardData(dlogits, params.value("head/logits/kernel"), dD, batch: batch, inputs: dense, outputs: classes)
        reluBackward(dD, d, count: batch * dense)
        let dF = arena.get("dF", batch * flat)
        weightGrads(sink, "head/dense1/kernel", "head/dense1/bias") { r, dw, db in
            denseBackwardWeights(f + r.lowerBound * flat, dD + r.lowerBound * dense, dw, db, batch: r.count, inputs: flat, outputs: dense)
        }
        denseBackwardData(dD, params.value("head/dense1/kernel"), dF, batch: batch, inputs: flat, outputs: dense)
        reluBackward(dF, f, count: batch * flat)
        let dZ = arena.get("dZ", rows * zChannels)
        let ws = workspace(batch)
        weightGrads(sink, fuse.kernel, fuse.bias) { r, dw, db in
            convBackwardWeights(z + r.lowerBound * rows / batch * zChannels, dF + r.lowerBound * flat, dw, db, batch: r.count, fuse.g, workspace: ws)
        }
        convBackwardData(dF, params.value(fuse.kernel), dZ, batch: batch, fuse.g, workspace: ws)
        if stopAt == .fused { return dZ }

        // YAMNet branch.
        if let t = yamnet {
            let frozen = config.freezeYAMNet
            let needed = stopAt == .yamnet || inputGradient || (!frozen && sink != nil)
            if needed {
                let g = t.output
                let dY = arena.get("d:" + t.layers.last!.key, batch * g.outSize)
                upsampleNearestBackward(dZ, dY, batch: batch, h: g.ho, w: g.wo, c: yChannels, factor: mapH / g.ho,
                                        yChannels: zChannels, cOffset: vChannels)
                if stopAt == .yamnet { return dY }
                timed("bwd yamnet") {
                    t.backward(dY, batch: batch, bn: frozen ? .moving : bnMode, sink: frozen ? nil : sink,
                               inputGradient: inputGradient, context(batch))
                }
            }
            if frozen, let sink, let range = yamnetRange { sink.zero(offset: range.lowerBound, count: range.count) }
        }

        // VGGish branch.
        if let v = vggish {
            let dV = arena.get("dV", rows * vChannels)
            extractChannels(dZ, dV, rows: rows, c: vChannels, yChannels: zChannels, cOffset: 0)
            reluBackward(dV, arena.existing("V"), count: rows * vChannels)
            let aA = arena.existing("aA"), aB = arena.existing("aB"), c = arena.existing("C")
            let taps: [(ConvLayer, UnsafeMutablePointer<S>, Int)] = [(tapC!, c, v.tapC), (tapB!, aB, v.tapB), (tapA!, aA, v.tapA)]
            for (tap, input, cin) in taps {
                weightGrads(sink, tap.kernel, tap.bias) { r, dw, db in
                    let off = r.lowerBound * mapH * mapW
                    S.gemm(true, false, cin, vChannels, r.count * mapH * mapW, 1, input + off * cin, cin, dV + off * vChannels, vChannels, 0, dw, vChannels)
                    columnSums(dV + off * vChannels, db, rows: r.count * mapH * mapW, channels: vChannels)
                }
            }
            let dC = arena.get("dC", rows * v.tapC)
            S.gemm(false, true, rows, v.tapC, vChannels, 1, dV, vChannels, params.value(tapC!.kernel), vChannels, 0, dC, v.tapC)
            if stopAt == .vggishC { return dC }
            // Gradients reaching A and B from the taps; the conv chain adds to them below.
            let gA = v.conv2.g, gB = v.conv3_2.g
            let dA = arena.get("dA", batch * gA.outSize / 4), dB = arena.get("dB", batch * gB.outSize / 4)
            let daA = arena.get("daA", rows * v.tapA), daB = arena.get("daB", rows * v.tapB)
            S.gemm(false, true, rows, v.tapA, vChannels, 1, dV, vChannels, params.value(tapA!.kernel), vChannels, 0, daA, v.tapA)
            S.gemm(false, true, rows, v.tapB, vChannels, 1, dV, vChannels, params.value(tapB!.kernel), vChannels, 0, daB, v.tapB)
            dA.update(repeating: 0, count: batch * gA.outSize / 4)
            dB.update(repeating: 0, count: batch * gB.outSize / 4)
            avgPoolBackwardAdd(daA, dA, batch: batch, h: gA.ho / 2, w: gA.wo / 2, c: v.tapA, k: (gA.ho / 2) / mapH)
            avgPoolBackwardAdd(daB, dB, batch: batch, h: gB.ho / 2, w: gB.wo / 2, c: v.tapB, k: (gB.ho / 2) / mapH)

            let g1 = arena.get("grad1", batch * v.conv1.g.outSize), g2 = arena.get("grad2", batch * v.conv1.g.outSize)
            // Through a max pool, ReLU and conv: returns the gradient at the conv's input (in `into`).
            func poolConv(_ dPooled: UnsafePointer<S>, _ l: ConvLayer, outKey: String, inKey: String, into: UnsafeMutablePointer<S>?, accumulate: Bool) {
                let out = arena.existing(outKey)
                timed("bwd maxpool+relu") {
                    maxPool2ReluBackward(dPooled, out, arena.existing(poolKey(outKey)), g1, batch: batch, h: l.g.ho, w: l.g.wo, c: l.g.cout, relu: true)
                }
                convBack(l, dy: g1, inKey: inKey, into: into, accumulate: accumulate)
            }
            func convBack(_ l: ConvLayer, dy: UnsafeMutablePointer<S>, inKey: String, into: UnsafeMutablePointer<S>?, accumulate: Bool) {
                let input = arena.existing(inKey)
                timed("bwdW " + l.name) {
                    weightGrads(sink, l.kernel, l.bias) { r, dw, db in
                        if useWinograd(l.g) {
                            winogradBackwardWeights(input + r.lowerBound * l.g.inSize, dy + r.lowerBound * l.g.outSize, dw, db, batch: r.count, l.g, workspace: ws)
                        } else {
                            convBackwardWeights(input + r.lowerBound * l.g.inSize, dy + r.lowerBound * l.g.outSize, dw, db, batch: r.count, l.g, workspace: ws)
                        }
                    }
                }
                guard let into else { return }
                timed("bwdX " + l.name) {
                    let target = accumulate ? g2 : into
                    if useWinograd(l.g) {
                        winogradBackwardData(dy, params.value(l.kernel), target, batch: batch, l.g, workspace: ws)
                    } else {
                        convBackwardData(dy, params.value(l.kernel), target, batch: batch, l.g, workspace: ws)
                    }
                    if accumulate {
                        let n = batch * l.g.inSize
                        for i in 0..<n { into[i] += g2[i] }
                    }
                }
            }
            // C ← conv4_2 ← conv4_1 ← B
            poolConv(dC, v.conv4_2, outKey: "c42", inKey: "c41", into: g2, accumulate: false)
            let dc41 = arena.get("dc41", batch * v.conv4_1.g.outSize)
            dc41.update(from: g2, count: batch * v.conv4_1.g.outSize)
            reluBackward(dc41, arena.existing("c41"), count: batch * v.conv4_1.g.outSize)
            convBack(v.conv4_1, dy: dc41, inKey: "B", into: dB, accumulate: true)
            if stopAt == .vggishB { return dB }
            // B ← conv3_2 ← conv3_1 ← A
            poolConv(dB, v.conv3_2, outKey: "c32", inKey: "c31", into: g2, accumulate: false)
            let dc31 = arena.get("dc31", batch * v.conv3_1.g.outSize)
            dc31.update(from: g2, count: batch * v.conv3_1.g.outSize)
            reluBackward(dc31, arena.existing("c31"), count: batch * v.conv3_1.g.outSize)
            convBack(v.conv3_1, dy: dc31, inKey: "A", into: dA, accumulate: true)
            if stopAt == .vggishA { return dA }
            // A ← conv2 ← p1 ← conv1 ← x
            let dp1 = arena.get("dp1", batch * v.conv2.g.inSize)
            poolConv(dA, v.conv2, outKey: "c2", inKey: "p1", into: dp1, accumulate: false)
            let needInput = inputGradient
            let dx = needInput ? arena.get("dxv", batch * inputSize) : nil
            poolConv(dp1, v.conv1, outKey: "c1", inKey: "x", into: dx, accumulate: false)
            if needInput {
                let total = arena.get("inputGradient", batch * inputSize)
                if config.hasYAMNet && arena.has("dxy") {
                    let dy = arena.existing("dxy")
                    for i in 0..<batch * inputSize { total[i] = dx![i] + dy[i] }
                } else {
                    total.update(from: dx!, count: batch * inputSize)
                }
            }
        } else if inputGradient, arena.has("dxy") {
            arena.get("inputGradient", batch * inputSize).update(from: arena.existing("dxy"), count: batch * inputSize)
        }
        return nil
    }

    private func poolKey(_ convKey: String) -> String {
        switch convKey {
        case "c1": return "p1"
        case "c2": return "A"
        case "c32": return "B"
        case "c42": return "C"
        default: preconditionFailure("no pool after \(convKey)")
        }
    }

    /// Runs `compute(samples, dKernel, dBias)` per chunk into the sink (nothing without a sink).
    private func weightGrads(_ sink: GradientSink<S>?, _ kernel: String, _ bias: String,
                             _ compute: (Range<Int>, UnsafeMutablePointer<S>, UnsafeMutablePointer<S>) -> Void) {
        guard let sink else { return }
        let kc = layout.spec(kernel)!.count, bc = layout.spec(bias)!.count
        let ko = layout.offsets[kernel]!, bo = layout.offsets[bias]!
        // Kernel and bias are adjacent in the flat buffer: one chunked computation covers both.
        precondition(bo == ko + kc, "\(bias) must follow \(kernel) in the layout")
        sink.accumulate(offset: ko, count: kc + bc) { r, out in compute(r, out, out + kc) }
    }
}
