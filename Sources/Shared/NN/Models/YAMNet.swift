import Foundation

/// A batch norm without scale (Keras `BatchNormalization(center=True, scale=False, epsilon=1e-4)`,
/// as in YAMNet): `<name>/beta` is trained, `<name>/moving_mean` and `<name>/moving_variance`
/// are state.
struct BatchNormLayer: Sendable {
    let name: String
    let channels: Int
    var beta: String { name + "/beta" }
    var movingMean: String { name + "/moving_mean" }
    var movingVariance: String { name + "/moving_variance" }

    func declare(_ layout: inout ParameterLayout) {
        layout.add(beta, [channels], .zeros)
        layout.add(movingMean, [channels], .zeros, state: true)
        layout.add(movingVariance, [channels], .ones, state: true)
    }
}

/// One YAMNet layer: a convolution (regular or depthwise, no bias) followed by batch norm and ReLU.
struct YAMNetConv: Sendable {
    enum Kind: Sendable { case regular, depthwise }
    let kind: Kind
    let g: ConvGeometry
    /// Kernel tensor name, e.g. `yamnet/layer2/depthwise_conv/depthwise_kernel`.
    let kernel: String
    let bn: BatchNormLayer
    /// Key prefix for this layer's stored activations.
    let key: String

    func declare(_ layout: inout ParameterLayout) {
        switch kind {
        case .regular: layout.add(kernel, [g.kh, g.kw, g.cin, g.cout], .heNormal, fanIn: g.kh * g.kw * g.cin)
        case .depthwise: layout.add(kernel, [g.kh, g.kw, g.cin, 1], .heNormal, fanIn: g.kh * g.kw)
        }
        bn.declare(&layout)
    }

    var flopsPerSample: Int { kind == .regular ? g.flopsPerSample : 2 * g.outPositions * g.kh * g.kw * g.cin }
}

/// YAMNet (tensorflow/models research/audioset/yamnet): MobileNet v1 on 96×64 log-mel patches.
///
///     layer1      conv 3×3/2 → 32, BN, ReLU                  (48, 32, 32)   yamnet/layer1/conv
///     layer2..14  depthwise 3×3/s, BN, ReLU; pointwise 1×1, BN, ReLU
///                 (64,1) (128,2) (128,1) (256,2) (256,1) (512,2) (512,1)×5 (1024,2) (1024,1)
///                 → (3, 2, 1024)                                   yamnet/layerL/{depthwise,pointwise}_conv
///
/// Names are those of shared/weights/yamnet (the Keras layer names of yamnet.py), under the
/// `yamnet/` prefix. No convolution has a bias; batch norm has no scale. The stride sits on the
/// depthwise convolution. The classifier (global average pool, `logits` 1024 → 521) is
/// `YAMNetClassifier`.
struct YAMNetTrunk: Sendable {
    let layers: [YAMNetConv]

    static let blocks: [(channels: Int, stride: Int)] = [(64, 1), (128, 2), (128, 1), (256, 2), (256, 1), (512, 2),
                                                         (512, 1), (512, 1), (512, 1), (512, 1), (512, 1), (1024, 2), (1024, 1)]

    init(_ cfg: ModelConfig, prefix: String = "yamnet/") {
        var h = cfg.frames, w = cfg.bands
        var layers: [YAMNetConv] = []
        let c32 = cfg.channels(32)
        let g1 = ConvGeometry(h: h, w: w, cin: 1, cout: c32, kh: 3, kw: 3, stride: 2)
        layers.append(YAMNetConv(kind: .regular, g: g1, kernel: prefix + "layer1/conv/kernel",
                                 bn: BatchNormLayer(name: prefix + "layer1/conv/bn", channels: c32), key: "y1"))
        h = g1.ho; w = g1.wo
        var cin = c32
        for (i, block) in YAMNetTrunk.blocks.enumerated() {
            let l = i + 2
            let cout = cfg.channels(block.channels)
            let gd = ConvGeometry(h: h, w: w, cin: cin, cout: cin, kh: 3, kw: 3, stride: block.stride)
            layers.append(YAMNetConv(kind: .depthwise, g: gd, kernel: prefix + "layer\(l)/depthwise_conv/depthwise_kernel",
                                     bn: BatchNormLayer(name: prefix + "layer\(l)/depthwise_conv/bn", channels: cin), key: "y\(l)d"))
            let gp = ConvGeometry(h: gd.ho, w: gd.wo, cin: cin, cout: cout, kh: 1, kw: 1, stride: 1)
            layers.append(YAMNetConv(kind: .regular, g: gp, kernel: prefix + "layer\(l)/pointwise_conv/kernel",
                                     bn: BatchNormLayer(name: prefix + "layer\(l)/pointwise_conv/bn", channels: cout), key: "y\(l)p"))
            h = gd.ho; w = gd.wo; cin = cout
        }
        self.layers = layers
    }

    func declare(_ layout: inout ParameterLayout) { for l in layers { l.declare(&layout) } }

    var output: ConvGeometry { layers.last!.g }
    var flopsPerSample: Int { layers.reduce(0) { $0 + $1.flopsPerSample } }
}
