import Foundation
import Shared

/// A convolution without bias followed by batch norm with scale and shift.
struct ConvBN: Sendable {
    let name: String
    let g: ConvGeometry
    let key: String
    var kernel: String { name + "/kernel" }
    var gamma: String { name + "/bn/gamma" }
    var beta: String { name + "/bn/beta" }
    var movingMean: String { name + "/bn/moving_mean" }
    var movingVariance: String { name + "/bn/moving_variance" }

    func declare(_ layout: inout ParameterLayout) {
        layout.add(kernel, [g.kh, g.kw, g.cin, g.cout], .heNormal, fanIn: g.kh * g.kw * g.cin)
        layout.add(gamma, [g.cout], .ones)
        layout.add(beta, [g.cout], .zeros)
        layout.add(movingMean, [g.cout], .zeros, state: true)
        layout.add(movingVariance, [g.cout], .ones, state: true)
    }
}

/// A basic residual block with squeeze-and-excitation.
struct SEBlock: Sendable {
    let conv1: ConvBN
    let conv2: ConvBN
    let shortcut: ConvBN?
    let squeeze: DenseLayer
    let excite: DenseLayer
    let key: String
    var out: ConvGeometry { conv2.g }
}

/// ResNet with squeeze-and-excitation blocks mapping a log-mel patch to an emotion vector (after
/// the ResNetSE34L of the metric-learning speaker-verification work the verify-to-classify paper
/// builds on, at CPU size).
///
///     x (96, 64, 1)
///     stem        conv 3×3/2 → c, BN, ReLU                                   (48, 32, c)
///     stage s     blocks[s] SE blocks, the first with stride 2 for s ≥ 1      channels c·2^s
///       block:    conv 3×3 (stride), BN, ReLU; conv 3×3, BN → u
///                 SE: a = σ(W₂ ReLU(W₁ mean_p u)), reduction r;  v = u ⊙ a
///                 out = ReLU(v + shortcut(x))   (shortcut: identity, or conv 1×1/stride + BN)
///     pool        mean over time and frequency                                (8c)
///     embedding   dense 8c → D (linear): the emotion vector
///
/// with c = 16·width (four stages: (48,32,c) (24,16,2c) (12,8,4c) (6,4,8c)). The loss's own
/// parameters follow the network in the flat buffer: `loss/softmax` (D → classes, softmax +
/// angular prototypical only) and `loss/scale`, `loss/bias` (w and b, initialised to 10 and −5 as
/// in the reference implementation). Batch norm uses the statistics of the global batch (every
/// rank's episode) in training and moving statistics otherwise.
public final class ResNetSEModel<S: Real> {
    public let settings: ResNetSESettings
    public let frames: Int
    public let bands: Int
    public let classes: Int
    public let layout: ParameterLayout
    public let params: Parameters<S>
    public let arena = Arena<S>()
    /// Combines batch-norm sums across ranks (one process: `LocalStatistics`).
    public var statistics: StatisticsSync = LocalStatistics()
    /// Samples over which batch statistics are taken when the batch is split over ranks.
    public var globalBatchOverride: Int?
    /// Winograd F(2×2, 3×3) for the stride-1 3×3 convolutions. Off by default: at these channel
    /// counts (16–128) the transforms cost more than they save, and the direct im2col + GEMM path
    /// measured faster (20 patches, 2 threads: forward 0.05 s against 0.06–0.12 s, backward 0.08 s
    /// against 0.12–0.18 s).
    public var winograd = false

    let stem: ConvBN
    let blocks: [SEBlock]
    let embeddingLayer: DenseLayer
    let softmaxHead: DenseLayer?
    public private(set) var batch = 0
    private var bnMode: BatchNormMode = .moving

    public var embedding: Int { settings.embedding }

    public init(frames: Int, bands: Int, classes: Int, settings: ResNetSESettings) throws {
        guard settings.blocks.count == 4, settings.blocks.allSatisfy({ $0 >= 1 }) else {
            throw ModelError("--blocks needs four stage depths of at least 1, e.g. 2,2,2,2 (got \(settings.blocks.map(String.init).joined(separator: ",")))")
        }
        guard frames % 16 == 0, bands % 16 == 0 else {
            throw ModelError("ResNet-SE halves the patch four times: frames and bands must be multiples of 16 (got \(frames)×\(bands))")
        }
        guard settings.width > 0, settings.width <= 4 else { throw ModelError("--width must be in (0, 4] (got \(settings.width))") }
        guard settings.embedding >= 2 else { throw ModelError("--embedding must be at least 2 (got \(settings.embedding))") }
        guard settings.reduction >= 1 else { throw ModelError("the squeeze-and-excitation reduction must be at least 1") }
        guard classes >= 2 else { throw ModelError("a classifier needs at least 2 classes (got \(classes))") }
        self.settings = settings
        self.frames = frames
        self.bands = bands
        self.classes = classes
        let c0 = max(2, Int((16 * settings.width).rounded()))
        var layout = ParameterLayout()
        stem = ConvBN(name: "stem/conv", g: ConvGeometry(h: frames, w: bands, cin: 1, cout: c0, kh: 3, kw: 3, stride: 2), key: "stem")
        stem.declare(&layout)
        var h = stem.g.ho, w = stem.g.wo, cin = c0
        var blocks: [SEBlock] = []
        for (s, depth) in settings.blocks.enumerated() {
            let cout = c0 << s
            for k in 0..<depth {
                let stride = s > 0 && k == 0 ? 2 : 1
                let name = "stage\(s + 1)/block\(k + 1)"
                let g1 = ConvGeometry(h: h, w: w, cin: cin, cout: cout, kh: 3, kw: 3, stride: stride)
                let g2 = ConvGeometry(h: g1.ho, w: g1.wo, cin: cout, cout: cout, kh: 3, kw: 3, stride: 1)
                let short = stride != 1 || cin != cout
                    ? ConvBN(name: name + "/shortcut", g: ConvGeometry(h: h, w: w, cin: cin, cout: cout, kh: 1, kw: 1, stride: stride), key: name + "/s")
                    : nil
                let mid = max(1, cout / settings.reduction)
                let b = SEBlock(conv1: ConvBN(name: name + "/conv1", g: g1, key: name + "/1"),
                                conv2: ConvBN(name: name + "/conv2", g: g2, key: name + "/2"),
                                shortcut: short,
                                squeeze: DenseLayer(name: name + "/se/squeeze", inputs: cout, outputs: mid),
                                excite: DenseLayer(name: name + "/se/excite", inputs: mid, outputs: cout), key: name)
                b.conv1.declare(&layout)
                b.conv2.declare(&layout)
                b.squeeze.declare(&layout)
                b.excite.declare(&layout)
                b.shortcut?.declare(&layout)
                blocks.append(b)
                h = g1.ho; w = g1.wo; cin = cout
            }
        }
        self.blocks = blocks
        embeddingLayer = DenseLayer(name: "embedding", inputs: cin, outputs: settings.embedding)
        embeddingLayer.declare(&layout)
        if settings.loss == .softmaxAngularPrototypical {
            let head = DenseLayer(name: "loss/softmax", inputs: settings.embedding, outputs: classes)
            head.declare(&layout)
            softmaxHead = head
        } else {
            softmaxHead = nil
        }
        layout.add("loss/scale", [1], .ones)
        layout.add("loss/bias", [1], .zeros)
        self.layout = layout
        params = Parameters(layout: layout)
    }

    /// Random initial weights; w = 10, b = −5 for the loss; the linear embedding and the SE
    /// excitation (followed by a sigmoid) with half He's variance.
    public func initialize(using rng: inout SeededGenerator) {
        params.initialize(using: &rng)
        embeddingLayer.scaleKernel(params, by: 0.5.squareRoot())
        softmaxHead?.scaleKernel(params, by: 0.5.squareRoot())
        for b in blocks { b.excite.scaleKernel(params, by: 0.5.squareRoot()) }
        params.value("loss/scale")[0] = 10
        params.value("loss/bias")[0] = -5
    }

    public var inputSize: Int { frames * bands }
    var finalChannels: Int { blocks.last!.out.cout }
    var finalPositions: Int { blocks.last!.out.outPositions }

    /// Multiply-adds ×2 of one forward pass per sample.
    public var forwardFlopsPerSample: Int {
        var f = stem.g.flopsPerSample
        for b in blocks { f += b.conv1.g.flopsPerSample + b.conv2.g.flopsPerSample + (b.shortcut?.g.flopsPerSample ?? 0) }
        return f + 2 * finalChannels * embedding
    }

    // MARK: - Forward

    /// x: (B, frames, bands, 1) → emotion vectors (B, D).
    @discardableResult
    @_specialize(exported: true, where S == Float)
    @_specialize(exported: true, where S == Double)
    public func forward(_ x: UnsafePointer<S>, batch: Int, bn: BatchNormMode, updateStatistics: Bool = false) -> UnsafeMutablePointer<S> {
        self.batch = batch
        bnMode = bn
        let input = arena.get("x", batch * inputSize)
        input.update(from: x, count: batch * inputSize)
        var cur: UnsafePointer<S> = UnsafePointer(convBN(stem, UnsafePointer(input), relu: true, update: updateStatistics))
        for b in blocks {
            let c1 = convBN(b.conv1, cur, relu: true, update: updateStatistics)
            let u = convBN(b.conv2, UnsafePointer(c1), relu: false, update: updateStatistics)
            let p = b.out.outPositions, c = b.out.cout
            let s = arena.get(b.key + "s", batch * c), e = arena.get(b.key + "e", batch * b.squeeze.outputs)
            let a = arena.get(b.key + "a", batch * c)
            Kernels.globalAvgPool(u, s, batch: batch, positions: p, c: c)
            b.squeeze.forward(params, s, e, batch: batch, relu: true)
            b.excite.forward(params, e, a, batch: batch)
            sigmoidForward(a, a, count: batch * c)
            let out = arena.get(b.key + "out", batch * b.out.outSize)
            channelScaleForward(u, a, out, batch: batch, positions: p, c: c)
            var short = cur
            if let sc = b.shortcut { short = UnsafePointer(convBN(sc, cur, relu: false, update: updateStatistics)) }
            residualAdd(out, short, out, count: batch * b.out.outSize, relu: true)
            cur = UnsafePointer(out)
        }
        let pooled = arena.get("pooled", batch * finalChannels)
        Kernels.globalAvgPool(cur, pooled, batch: batch, positions: finalPositions, c: finalChannels)
        let emb = arena.get("embedding", batch * embedding)
        embeddingLayer.forward(params, pooled, emb, batch: batch)
        return emb
    }

    private func workspace(_ g: ConvGeometry) -> UnsafeMutablePointer<S> {
        let n = useWinograd(g) ? winogradWorkspaceCount(g, batch: batch) : convWorkspaceCount(g, batch, MemoryLayout<S>.stride)
        return arena.get("workspace", n)
    }

    func useWinograd(_ g: ConvGeometry) -> Bool { winograd && winogradApplies(g) }

    /// Convolution then batch norm (ReLU optional); keeps the pre-norm map, mean and 1/σ.
    private func convBN(_ l: ConvBN, _ x: UnsafePointer<S>, relu: Bool, update: Bool) -> UnsafeMutablePointer<S> {
        let g = l.g, c = g.cout, positions = g.outPositions
        let h = arena.get(l.key + "h", batch * g.outSize)
        let ws = workspace(g)
        if useWinograd(g) {
            Kernels.winogradForward(x, params.value(l.kernel), nil, h, batch: batch, g, relu: false, workspace: ws)
        } else {
            Kernels.convForward(x, params.value(l.kernel), nil, h, batch: batch, g, relu: false, workspace: ws)
        }
        let mean = arena.get(l.key + "mean", c), istd = arena.get(l.key + "istd", c)
        let eps = settings.bnEpsilon
        let mm = params.value(l.movingMean), mv = params.value(l.movingVariance)
        switch bnMode {
        case .moving:
            for ch in 0..<c {
                mean[ch] = mm[ch]
                istd[ch] = S(1 / (Double(mv[ch]) + eps).squareRoot())
            }
        case .batch:
            let rows = arena.doubles(l.key + "rows", batch * 2 * c)
            Kernels.bnSampleSumsAndSquares(h, batch: batch, positions: positions, channels: c, rows)
            let sums = statistics.globalColumnSums(rows, localBatch: batch, width: 2 * c)
            Kernels.bnTakeBatchStatistics(sums, channels: c, count: Double((globalBatchOverride ?? batch) * positions), epsilon: eps,
                                          momentum: settings.bnMomentum, update: update, mean: mean, invStd: istd,
                                          movingMean: mm, movingVariance: mv)
        }
        let y = arena.get(l.key, batch * g.outSize)
        Kernels.bnApply(h, y, mean: mean, invStd: istd, gamma: params.value(l.gamma), beta: params.value(l.beta),
                rows: batch * positions, channels: c, relu: relu)
        return y
    }

    // MARK: - Loss

    /// What the verifier's loss says about the last forward pass (an episode).
    public struct EpisodeLoss: Sendable {
        public var total: Double
        public var prototypical: Double
        public var crossEntropy: Double?
        /// Fraction of queries closest to their own prototype.
        public var accuracy: Double
    }

    /// The loss of the episode in the last forward pass (N classes × M utterances, class-major;
    /// `labels` are the store's class indices of the rows) and its gradient, scaled by 1/`ranks`
    /// so that the sum over ranks is the gradient of the mean of their episodes' losses.
    public func episodeLoss(classes n: Int, utterances m: Int, labels: [Int], ranks: Int) -> EpisodeLoss {
        precondition(batch == n * m && labels.count == batch)
        let d = embedding
        let emb = arena.existing("embedding")
        let e = (0..<(batch * d)).map { Double(emb[$0]) }
        let r = AngularPrototypical.compute(e, classes: n, utterances: m, dim: d,
                                            scale: Double(params.value("loss/scale")[0]), bias: Double(params.value("loss/bias")[0]))
        let inv = 1 / Double(ranks)
        let dEmb = arena.get("dembedding", batch * d)
        for i in 0..<(batch * d) { dEmb[i] = S(r.dEmbeddings[i] * inv) }
        let dLoss = arena.get("dloss", 2)
        dLoss[0] = S(r.dScale * inv)
        dLoss[1] = S(r.dBias * inv)
        var result = EpisodeLoss(total: r.loss, prototypical: r.loss, crossEntropy: nil, accuracy: r.accuracy)
        if let head = softmaxHead {
            let logits = arena.get("logits", batch * classes)
            head.forward(params, emb, logits, batch: batch)
            let dl = arena.get("dlogits", batch * classes)
            let ce = Kernels.softmaxCrossEntropy(logits, labels: labels, classes: classes, globalBatch: batch * ranks, dlogits: dl)
            let mean = ce.reduce(0, +) / Double(batch)
            result.crossEntropy = mean
            result.total += mean
        }
        return result
    }

    // MARK: - Backward

    /// Backpropagates the gradients `episodeLoss` left (or `dEmbeddings`, (B, D), if given) through
    /// the last forward pass; parameter gradients go to `sink`, whose plan must give this rank's
    /// samples as a single chunk (the loss's own parameters are functions of the whole episode).
    @_specialize(exported: true, where S == Float)
    @_specialize(exported: true, where S == Double)
    public func backward(sink: GradientSink<S>?, dEmbeddings: UnsafePointer<S>? = nil) {
        let d = embedding
        let dEmb = arena.get("dembedding", batch * d)
        if let dEmbeddings { dEmb.update(from: dEmbeddings, count: batch * d) }
        if let sink {
            precondition(sink.plan.chunks.count == 1, "ResNet-SE's loss needs one gradient chunk per rank")
            let dLoss = arena.get("dloss", 2)
            sink.accumulate(offset: layout.offsets["loss/scale"]!, count: 2, serially: { _, out in
                out[0] = dEmbeddings == nil ? dLoss[0] : 0
                out[1] = dEmbeddings == nil ? dLoss[1] : 0
            })
        }
        if let head = softmaxHead {
            if dEmbeddings == nil {
                // The softmax head's gradient at the embeddings adds to the prototypical one.
                let dFromHead = arena.get("dhead", batch * d)
                head.backward(params, x: arena.existing("embedding"), dy: arena.existing("dlogits"), dx: dFromHead, batch: batch, sink: sink)
                addInPlace(dEmb, dFromHead, count: batch * d)
            } else if let sink {
                sink.zero(offset: layout.offsets[head.kernel]!, count: head.inputs * head.outputs + head.outputs)
            }
        }
        let dPooled = arena.get("dpooled", batch * finalChannels)
        embeddingLayer.backward(params, x: arena.existing("pooled"), dy: dEmb, dx: dPooled, batch: batch, sink: sink)
        // Two buffers take turns as a block's output and input gradient.
        var outName = "dA"
        var dOut = arena.get(outName, batch * blocks.last!.out.outSize)
        globalAvgPoolBackward(dPooled, dOut, batch: batch, positions: finalPositions, c: finalChannels)
        for (i, b) in blocks.enumerated().reversed() {
            let input: UnsafePointer<S> = i == 0 ? UnsafePointer(arena.existing(stem.key)) : UnsafePointer(arena.existing(blocks[i - 1].key + "out"))
            outName = outName == "dA" ? "dB" : "dA"
            let dIn = arena.get(outName, batch * b.conv1.g.inSize)
            blockBackward(b, input: input, dOut: dOut, dIn: dIn, sink: sink)
            dOut = dIn
        }
        Kernels.reluBackward(dOut, arena.existing(stem.key), count: batch * stem.g.outSize)
        convBNBackward(stem, input: arena.existing("x"), dy: dOut, dx: nil, sink: sink)
    }

    /// dOut → dIn through one block (dOut is used as scratch).
    private func blockBackward(_ b: SEBlock, input: UnsafePointer<S>, dOut: UnsafeMutablePointer<S>, dIn: UnsafeMutablePointer<S>,
                               sink: GradientSink<S>?) {
        let size = batch * b.out.outSize, p = b.out.outPositions, c = b.out.cout
        Kernels.reluBackward(dOut, arena.existing(b.key + "out"), count: size)
        // Shortcut first: its tensors come last in the block.
        if let s = b.shortcut {
            let dsx = arena.get("dshort", batch * s.g.inSize)
            let dsy = arena.get("dshorty", size)
            dsy.update(from: dOut, count: size)
            convBNBackward(s, input: input, dy: dsy, dx: dsx, sink: sink)
            dIn.update(from: dsx, count: batch * s.g.inSize)
        } else {
            dIn.update(from: dOut, count: size)
        }
        // Squeeze-and-excitation.
        let u = arena.existing(b.conv2.key), a = arena.existing(b.key + "a")
        let du = arena.get("du", size), da = arena.get("da", batch * c)
        channelScaleBackward(dOut, u, a, du, da, batch: batch, positions: p, c: c)
        sigmoidBackward(da, a, da, count: batch * c)
        let e = arena.existing(b.key + "e"), de = arena.get("de", batch * b.squeeze.outputs)
        b.excite.backward(params, x: e, dy: da, dx: de, batch: batch, sink: sink)
        Kernels.reluBackward(de, e, count: batch * b.squeeze.outputs)
        let ds = arena.get("ds", batch * c)
        b.squeeze.backward(params, x: arena.existing(b.key + "s"), dy: de, dx: ds, batch: batch, sink: sink)
        let dpool = arena.get("dpool", size)
        globalAvgPoolBackward(ds, dpool, batch: batch, positions: p, c: c)
        addInPlace(du, dpool, count: size)
        // conv2 + BN2, ReLU, conv1 + BN1.
        let c1 = arena.existing(b.conv1.key)
        let dc1 = arena.get("dc1", batch * b.conv1.g.outSize)
        convBNBackward(b.conv2, input: c1, dy: du, dx: dc1, sink: sink)
        Kernels.reluBackward(dc1, c1, count: batch * b.conv1.g.outSize)
        let dx = arena.get("dmain", batch * b.conv1.g.inSize)
        convBNBackward(b.conv1, input: input, dy: dc1, dx: dx, sink: sink)
        addInPlace(dIn, dx, count: batch * b.conv1.g.inSize)
    }

    /// Through batch norm (dy is the gradient at its output, any ReLU already applied; used as
    /// scratch) and the convolution: gamma, beta and kernel gradients to `sink`, dx if given.
    private func convBNBackward(_ l: ConvBN, input: UnsafePointer<S>, dy: UnsafeMutablePointer<S>, dx: UnsafeMutablePointer<S>?,
                                sink: GradientSink<S>?) {
        let g = l.g, c = g.cout, positions = g.outPositions
        let h = arena.existing(l.key + "h"), mean = arena.existing(l.key + "mean"), istd = arena.existing(l.key + "istd")
        let rows = arena.doubles(l.key + "brows", batch * 2 * c)
        Kernels.bnBackwardSampleSums(dy, h, mean: mean, invStd: istd, batch: batch, positions: positions, channels: c, rows)
        let dh = arena.get("dh", batch * g.outSize)
        if bnMode == .batch {
            let sums = statistics.globalColumnSums(rows, localBatch: batch, width: 2 * c)
            let s1 = arena.get("s1", c), s2 = arena.get("s2", c)
            for ch in 0..<c { s1[ch] = S(sums[ch]); s2[ch] = S(sums[c + ch]) }
            Kernels.bnBackwardData(dy, h, dh, mean: mean, invStd: istd, gamma: params.value(l.gamma), sumDy: s1, sumDyXhat: s2,
                           count: (globalBatchOverride ?? batch) * positions, rows: batch * positions, channels: c)
        } else {
            Kernels.bnBackwardDataFixed(dy, dh, invStd: istd, gamma: params.value(l.gamma), rows: batch * positions, channels: c)
        }
        if let sink {
            precondition(layout.offsets[l.beta]! == layout.offsets[l.gamma]! + c)
            // gamma: Σ dy·x̂, beta: Σ dy, per chunk of samples.
            sink.accumulate(offset: layout.offsets[l.gamma]!, count: 2 * c, serially: { r, out in
                for ch in 0..<c {
                    var sg = 0.0, sb = 0.0
                    for b in r { sg += rows[b * 2 * c + c + ch]; sb += rows[b * 2 * c + ch] }
                    out[ch] = S(sg)
                    out[c + ch] = S(sb)
                }
            })
            let ws = workspace(g)
            sink.accumulate(offset: layout.offsets[l.kernel]!, count: layout.spec(l.kernel)!.count) { r, dw in
                if useWinograd(g) {
                    Kernels.winogradBackwardWeights(input + r.lowerBound * g.inSize, dh + r.lowerBound * g.outSize, dw, nil, batch: r.count, g, workspace: ws)
                } else {
                    Kernels.convBackwardWeights(input + r.lowerBound * g.inSize, dh + r.lowerBound * g.outSize, dw, nil, batch: r.count, g, workspace: ws)
                }
            }
        }
        if let dx {
            let ws = workspace(g)
            if useWinograd(g) {
                Kernels.winogradBackwardData(dh, params.value(l.kernel), dx, batch: batch, g, workspace: ws)
            } else {
                Kernels.convBackwardData(dh, params.value(l.kernel), dx, batch: batch, g, workspace: ws)
            }
        }
    }

    // MARK: - Inference

    /// Emotion vectors of `count` patches (moving statistics), L2-normalised, in batches.
    public func embed(_ x: UnsafePointer<S>, count: Int, batchSize: Int = 64) -> [[Double]] {
        var out: [[Double]] = []
        var start = 0
        while start < count {
            let n = min(batchSize, count - start)
            let e = forward(x + start * inputSize, batch: n, bn: .moving)
            for b in 0..<n {
                let v = (0..<embedding).map { Double(e[b * embedding + $0]) }
                out.append(normalized(v))
            }
            start += n
        }
        return out
    }
}

/// v / ‖v‖ (v itself when it is zero).
func normalized(_ v: [Double]) -> [Double] {
    let n = v.reduce(0) { $0 + $1 * $1 }.squareRoot()
    return n > 0 ? v.map { $0 / n } : v
}
