module @jit_llama_loss attributes {mhlo.num_partitions = 8 : i32, mhlo.num_replicas = 1 : i32} {
  func.func public @main(%arg0: tensor<4x8x16xf32> {mhlo.sharding = "{devices=[2,1,1,4]<=[8] last_tile_dim_replicate}"}, %arg1: tensor<16xf32> {mhlo.sharding = "{replicated}"}, %arg2: tensor<16x4x4xf32> {mhlo.sharding = "{devices=[1,4,1,2]<=[2,4]T(1,0) last_tile_dim_replicate}"}, %arg3: tensor<16x2x4xf32> {mhlo.sharding = "{replicated}"}, %arg4: tensor<16x2x4xf32> {mhlo.sharding = "{replicated}"}, %arg5: tensor<4x4x16xf32> {mhlo.sharding = "{devices=[4,1,1,2]<=[2,4]T(1,0) last_tile_dim_replicate}"}, %arg6: tensor<16xf32> {mhlo.sharding = "{replicated}"}, %arg7: tensor<16x32xf32> {mhlo.sharding = "{devices=[1,4,2]<=[2,4]T(1,0) last_tile_dim_replicate}"}, %arg8: tensor<16x32xf32> {mhlo.sharding = "{devices=[1,4,2]<=[2,4]T(1,0) last_tile_dim_replicate}"}, %arg9: tensor<32x16xf32> {mhlo.sharding = "{devices=[4,1,2]<=[2,4]T(1,0) last_tile_dim_replicate}"}) -> (tensor<16xf32> {jax.result_info = "result[0]"}, tensor<16x4x4xf32> {jax.result_info = "result[1]"}, tensor<16x2x4xf32> {jax.result_info = "result[2]"}, tensor<16x2x4xf32> {jax.result_info = "result[3]"}, tensor<4x4x16xf32> {jax.result_info = "result[4]"}, tensor<16xf32> {jax.result_info = "result[5]"}, tensor<16x32xf32> {jax.result_info = "result[6]"}, tensor<16x32xf32> {jax.result_info = "result[7]"}, tensor<32x16xf32> {jax.result_info = "result[8]"}) {
    %0 = stablehlo.multiply %arg0, %arg0 : tensor<4x8x16xf32>
    %cst = stablehlo.constant dense<0.000000e+00> : tensor<f32>
    %1 = stablehlo.reduce(%0 init: %cst) applies stablehlo.add across dimensions = [2] : (tensor<4x8x16xf32>, tensor<f32>) -> tensor<4x8xf32>
    %2 = stablehlo.broadcast_in_dim %1, dims = [0, 1] : (tensor<4x8xf32>) -> tensor<4x8x1xf32>
    %cst_0 = stablehlo.constant dense<1.600000e+01> : tensor<f32>
    %3 = stablehlo.broadcast_in_dim %cst_0, dims = [] : (tensor<f32>) -> tensor<4x8x1xf32>
    %4 = stablehlo.divide %2, %3 : tensor<4x8x1xf32>
    %cst_1 = stablehlo.constant dense<9.99999997E-7> : tensor<f32>
    %5 = stablehlo.broadcast_in_dim %cst_1, dims = [] : (tensor<f32>) -> tensor<4x8x1xf32>
    %6 = stablehlo.add %4, %5 : tensor<4x8x1xf32>
    %7 = stablehlo.rsqrt %6 : tensor<4x8x1xf32>
    %8 = stablehlo.broadcast_in_dim %7, dims = [0, 1, 2] : (tensor<4x8x1xf32>) -> tensor<4x8x16xf32>
    %9 = stablehlo.multiply %arg0, %8 : tensor<4x8x16xf32>
    %10 = stablehlo.broadcast_in_dim %arg1, dims = [2] : (tensor<16xf32>) -> tensor<1x1x16xf32>
    %11 = stablehlo.broadcast_in_dim %10, dims = [0, 1, 2] : (tensor<1x1x16xf32>) -> tensor<4x8x16xf32>
    %12 = stablehlo.multiply %9, %11 : tensor<4x8x16xf32>
    %13 = stablehlo.dot_general %12, %arg2, contracting_dims = [2] x [0], precision = [DEFAULT, DEFAULT] : (tensor<4x8x16xf32>, tensor<16x4x4xf32>) -> tensor<4x8x4x4xf32>
    %14 = stablehlo.iota dim = 0 : tensor<2xf32>
    %cst_2 = stablehlo.constant dense<2.000000e+00> : tensor<f32>
    %15 = stablehlo.broadcast_in_dim %cst_2, dims = [] : (tensor<f32>) -> tensor<2xf32>
    %16 = stablehlo.multiply %15, %14 : tensor<2xf32>
    %cst_3 = stablehlo.constant dense<0.000000e+00> : tensor<f32>
    %17 = stablehlo.broadcast_in_dim %cst_3, dims = [] : (tensor<f32>) -> tensor<2xf32>
    %18 = stablehlo.add %17, %16 : tensor<2xf32>
    %cst_4 = stablehlo.constant dense<4.000000e+00> : tensor<f32>
    %19 = stablehlo.broadcast_in_dim %cst_4, dims = [] : (tensor<f32>) -> tensor<2xf32>
    %20 = stablehlo.divide %18, %19 : tensor<2xf32>
    %cst_5 = stablehlo.constant dense<1.000000e+04> : tensor<f32>
    %21 = stablehlo.broadcast_in_dim %cst_5, dims = [] : (tensor<f32>) -> tensor<2xf32>
    %22 = stablehlo.power %21, %20 : tensor<2xf32>
    %cst_6 = stablehlo.constant dense<1.000000e+00> : tensor<f32>
    %23 = stablehlo.broadcast_in_dim %cst_6, dims = [] : (tensor<f32>) -> tensor<2xf32>
    %24 = stablehlo.divide %23, %22 : tensor<2xf32>
    %25 = stablehlo.iota dim = 0 : tensor<8xf32>
    %26 = stablehlo.broadcast_in_dim %25, dims = [0] : (tensor<8xf32>) -> tensor<8x1xf32>
    %27 = stablehlo.broadcast_in_dim %24, dims = [1] : (tensor<2xf32>) -> tensor<1x2xf32>
    %28 = stablehlo.broadcast_in_dim %26, dims = [0, 1] : (tensor<8x1xf32>) -> tensor<8x2xf32>
    %29 = stablehlo.broadcast_in_dim %27, dims = [0, 1] : (tensor<1x2xf32>) -> tensor<8x2xf32>
    %30 = stablehlo.multiply %28, %29 : tensor<8x2xf32>
    %31 = stablehlo.sine %30 : tensor<8x2xf32>
    %32 = stablehlo.broadcast_in_dim %31, dims = [1, 3] : (tensor<8x2xf32>) -> tensor<1x8x1x2xf32>
    %33 = stablehlo.cosine %30 : tensor<8x2xf32>
    %34 = stablehlo.broadcast_in_dim %33, dims = [1, 3] : (tensor<8x2xf32>) -> tensor<1x8x1x2xf32>
    %35 = stablehlo.slice %13 [0:4, 0:8, 0:4, 0:4:2] : (tensor<4x8x4x4xf32>) -> tensor<4x8x4x2xf32>
    %36 = stablehlo.slice %13 [0:4, 0:8, 0:4, 1:4:2] : (tensor<4x8x4x4xf32>) -> tensor<4x8x4x2xf32>
    %37 = stablehlo.broadcast_in_dim %34, dims = [0, 1, 2, 3] : (tensor<1x8x1x2xf32>) -> tensor<4x8x4x2xf32>
    %38 = stablehlo.multiply %35, %37 : tensor<4x8x4x2xf32>
    %39 = stablehlo.broadcast_in_dim %32, dims = [0, 1, 2, 3] : (tensor<1x8x1x2xf32>) -> tensor<4x8x4x2xf32>
    %40 = stablehlo.multiply %36, %39 : tensor<4x8x4x2xf32>
    %41 = stablehlo.subtract %38, %40 : tensor<4x8x4x2xf32>
    %42 = stablehlo.broadcast_in_dim %32, dims = [0, 1, 2, 3] : (tensor<1x8x1x2xf32>) -> tensor<4x8x4x2xf32>
    %43 = stablehlo.multiply %35, %42 : tensor<4x8x4x2xf32>
    %44 = stablehlo.broadcast_in_dim %34, dims = [0, 1, 2, 3] : (tensor<1x8x1x2xf32>) -> tensor<4x8x4x2xf32>
    %45 = stablehlo.multiply %36, %44 : tensor<4x8x4x2xf32>
    %46 = stablehlo.add %43, %45 : tensor<4x8x4x2xf32>
    %47 = stablehlo.broadcast_in_dim %41, dims = [0, 1, 2, 3] : (tensor<4x8x4x2xf32>) -> tensor<4x8x4x2x1xf32>
    %48 = stablehlo.broadcast_in_dim %46, dims = [0, 1, 2, 3] : (tensor<4x8x4x2xf32>) -> tensor<4x8x4x2x1xf32>
    %49 = stablehlo.concatenate %47, %48, dim = 4 : (tensor<4x8x4x2x1xf32>, tensor<4x8x4x2x1xf32>) -> tensor<4x8x4x2x2xf32>
    %50 = stablehlo.reshape %49 : (tensor<4x8x4x2x2xf32>) -> tensor<4x8x4x4xf32>
    %51 = stablehlo.dot_general %12, %arg3, contracting_dims = [2] x [0], precision = [DEFAULT, DEFAULT] : (tensor<4x8x16xf32>, tensor<16x2x4xf32>) -> tensor<4x8x2x4xf32>
    %52 = stablehlo.iota dim = 0 : tensor<2xf32>
    %cst_7 = stablehlo.constant dense<2.000000e+00> : tensor<f32>
    %53 = stablehlo.broadcast_in_dim %cst_7, dims = [] : (tensor<f32>) -> tensor<2xf32>
    %54 = stablehlo.multiply %53, %52 : tensor<2xf32>
    %cst_8 = stablehlo.constant dense<0.000000e+00> : tensor<f32>
    %55 = stablehlo.broadcast_in_dim %cst_8, dims = [] : (tensor<f32>) -> tensor<2xf32>
    %56 = stablehlo.add %55, %54 : tensor<2xf32>
    %cst_9 = stablehlo.constant dense<4.000000e+00> : tensor<f32>
    %57 = stablehlo.broadcast_in_dim %cst_9, dims = [] : (tensor<f32>) -> tensor<2xf32>
    %58 = stablehlo.divide %56, %57 : tensor<2xf32>
    %cst_10 = stablehlo.constant dense<1.000000e+04> : tensor<f32>
    %59 = stablehlo.broadcast_in_dim %cst_10, dims = [] : (tensor<f32>) -> tensor<2xf32>
    %60 = stablehlo.power %59, %58 : tensor<2xf32>
    %cst_11 = stablehlo.constant dense<1.000000e+00> : tensor<f32>
    %61 = stablehlo.broadcast_in_dim %cst_11, dims = [] : (tensor<f32>) -> tensor<2xf32>
    %62 = stablehlo.divide %61, %60 : tensor<2xf32>
    %63 = stablehlo.iota dim = 0 : tensor<8xf32>
    %64 = stablehlo.broadcast_in_dim %63, dims = [0] : (tensor<8xf32>) -> tensor<8x1xf32>
    %65 = stablehlo.broadcast_in_dim %62, dims = [1] : (tensor<2xf32>) -> tensor<1x2xf32>
    %66 = stablehlo.broadcast_in_dim %64, dims = [0, 1] : (tensor<8x1xf32>) -> tensor<8x2xf32>
    %67 = stablehlo.broadcast_in_dim %65, dims = [0, 1] : (tensor<1x2xf32>) -> tensor<8x2xf32>
    %68 = stablehlo.multiply %66, %67 : tensor<8x2xf32>
    %69 = stablehlo.sine %68 : tensor<8x2xf32>
    %70 = stablehlo.broadcast_in_dim %69, dims = [1, 3] : (tensor<8x2xf32>) -> tensor<1x8x1x2xf32>
    %71 = stablehlo.cosine %68 : tensor<8x2xf32>
    %72 = stablehlo.broadcast_in_dim %71, dims = [1, 3] : (tensor<8x2xf32>) -> tensor<1x8x1x2xf32>
    %73 = stablehlo.slice %51 [0:4, 0:8, 0:2, 0:4:2] : (tensor<4x8x2x4xf32>) -> tensor<4x8x2x2xf32>
    %74 = stablehlo.slice %51 [0:4, 0:8, 0:2, 1:4:2] : (tensor<4x8x2x4xf32>) -> tensor<4x8x2x2xf32>
    %75 = stablehlo.broadcast_in_dim %72, dims = [0, 1, 2, 3] : (tensor<1x8x1x2xf32>) -> tensor<4x8x2x2xf32>
    %76 = stablehlo.multiply %73, %75 : tensor<4x8x2x2xf32>
    %77 = stablehlo.broadcast_in_dim %70, dims = [0, 1, 2, 3] : (tensor<1x8x1x2xf32>) -> tensor<4x8x2x2xf32>
    %78 = stablehlo.multiply %74, %77 : tensor<4x8x2x2xf32>
    %79 = stablehlo.subtract %76, %78 : tensor<4x8x2x2xf32>
    %80 = stablehlo.broadcast_in_dim %70, dims = [0, 1, 2, 3] : (tensor<1x8x1x2xf32>) -> tensor<4x8x2x2xf32>
    %81 = stablehlo.multiply %73, %80 : tensor<4x8x2x2xf32>
    %82 = stablehlo.broadcast_in_dim %72, dims = [0, 1, 2, 3] : (tensor<1x8x1x2xf32>) -> tensor<4x8x2x2xf32>
    %83 = stablehlo.multiply %74, %82 : tensor<4x8x2x2xf32>
    %84 = stablehlo.add %81, %83 : tensor<4x8x2x2xf32>
    %85 = stablehlo.broadcast_in_dim %79, dims = [0, 1, 2, 3] : (tensor<4x8x2x2xf32>) -> tensor<4x8x2x2x1xf32>
    %86 = stablehlo.broadcast_in_dim %84, dims = [0, 1, 2, 3] : (tensor<4x8x2x2xf32>) -> tensor<4x8x2x2x1xf32>
    %87 = stablehlo.concatenate %85, %86, dim = 4 : (tensor<4x8x2x2x1xf32>, tensor<4x8x2x2x1xf32>) -> tensor<4x8x2x2x2xf32>
    %88 = stablehlo.reshape %87 : (tensor<4x8x2x2x2xf32>) -> tensor<4x8x2x4xf32>
    %89 = stablehlo.dot_general %12, %arg4, contracting_dims = [2] x [0], precision = [DEFAULT, DEFAULT] : (tensor<4x8x16xf32>, tensor<16x2x4xf32>) -> tensor<4x8x2x4xf32>
    %90 = stablehlo.broadcast_in_dim %88, dims = [0, 1, 2, 4] : (tensor<4x8x2x4xf32>) -> tensor<4x8x2x2x4xf32>
    %91 = stablehlo.reshape %90 : (tensor<4x8x2x2x4xf32>) -> tensor<4x8x4x4xf32>
    %92 = stablehlo.broadcast_in_dim %89, dims = [0, 1, 2, 4] : (tensor<4x8x2x4xf32>) -> tensor<4x8x2x2x4xf32>
    %93 = stablehlo.reshape %92 : (tensor<4x8x2x2x4xf32>) -> tensor<4x8x4x4xf32>
    %94 = stablehlo.dot_general %50, %91, batching_dims = [0, 2] x [0, 2], contracting_dims = [3] x [3], precision = [DEFAULT, DEFAULT] : (tensor<4x8x4x4xf32>, tensor<4x8x4x4xf32>) -> tensor<4x4x8x8xf32>
    %cst_12 = stablehlo.constant dense<4.000000e+00> : tensor<f32>
    %95 = stablehlo.sqrt %cst_12 : tensor<f32>
    %96 = stablehlo.convert %95 : tensor<f32>
    %97 = stablehlo.broadcast_in_dim %96, dims = [] : (tensor<f32>) -> tensor<4x4x8x8xf32>
    %98 = stablehlo.divide %94, %97 : tensor<4x4x8x8xf32>
    %c = stablehlo.constant dense<true> : tensor<i1>
    %99 = stablehlo.broadcast_in_dim %c, dims = [] : (tensor<i1>) -> tensor<8x8xi1>
    %100 = call @tril(%99) : (tensor<8x8xi1>) -> tensor<8x8xi1>
    %cst_13 = stablehlo.constant dense<0xFF800000> : tensor<f32>
    %101:2 = call @_where(%100, %98, %cst_13) : (tensor<8x8xi1>, tensor<4x4x8x8xf32>, tensor<f32>) -> (tensor<4x4x8x8xf32>, tensor<4x4x8x8xi1>)
    %cst_14 = stablehlo.constant dense<0xFF800000> : tensor<f32>
    %102 = stablehlo.reduce(%101#0 init: %cst_14) applies stablehlo.maximum across dimensions = [3] : (tensor<4x4x8x8xf32>, tensor<f32>) -> tensor<4x4x8xf32>
    %cst_15 = stablehlo.constant dense<0xFF800000> : tensor<f32>
    %103 = stablehlo.broadcast_in_dim %cst_15, dims = [] : (tensor<f32>) -> tensor<4x4x8xf32>
    %104 = stablehlo.maximum %103, %102 : tensor<4x4x8xf32>
    %105 = stablehlo.broadcast_in_dim %104, dims = [0, 1, 2] : (tensor<4x4x8xf32>) -> tensor<4x4x8x1xf32>
    %106 = stablehlo.broadcast_in_dim %105, dims = [0, 1, 2, 3] : (tensor<4x4x8x1xf32>) -> tensor<4x4x8x8xf32>
    %107 = stablehlo.subtract %101#0, %106 : tensor<4x4x8x8xf32>
    %108 = stablehlo.exponential %107 : tensor<4x4x8x8xf32>
    %cst_16 = stablehlo.constant dense<0.000000e+00> : tensor<f32>
    %109 = stablehlo.reduce(%108 init: %cst_16) applies stablehlo.add across dimensions = [3] : (tensor<4x4x8x8xf32>, tensor<f32>) -> tensor<4x4x8xf32>
    %110 = stablehlo.broadcast_in_dim %109, dims = [0, 1, 2] : (tensor<4x4x8xf32>) -> tensor<4x4x8x1xf32>
    %111 = stablehlo.broadcast_in_dim %110, dims = [0, 1, 2, 3] : (tensor<4x4x8x1xf32>) -> tensor<4x4x8x8xf32>
    %112 = stablehlo.divide %108, %111 : tensor<4x4x8x8xf32>
    %113 = stablehlo.multiply %110, %110 : tensor<4x4x8x1xf32>
    %cst_17 = stablehlo.constant dense<1.000000e+00> : tensor<f32>
    %114 = stablehlo.broadcast_in_dim %cst_17, dims = [] : (tensor<f32>) -> tensor<4x4x8x1xf32>
    %115 = stablehlo.divide %114, %113 : tensor<4x4x8x1xf32>
    %116 = stablehlo.dot_general %93, %112, batching_dims = [0, 2] x [0, 1], contracting_dims = [1] x [3], precision = [DEFAULT, DEFAULT] : (tensor<4x8x4x4xf32>, tensor<4x4x8x8xf32>) -> tensor<4x4x4x8xf32>
    %117 = stablehlo.transpose %116, dims = [0, 3, 1, 2] : (tensor<4x4x4x8xf32>) -> tensor<4x8x4x4xf32>
    %118 = stablehlo.dot_general %117, %arg5, contracting_dims = [2, 3] x [0, 1], precision = [DEFAULT, DEFAULT] : (tensor<4x8x4x4xf32>, tensor<4x4x16xf32>) -> tensor<4x8x16xf32>
    %119 = stablehlo.add %arg0, %118 : tensor<4x8x16xf32>
    %120 = stablehlo.multiply %119, %119 : tensor<4x8x16xf32>
    %cst_18 = stablehlo.constant dense<0.000000e+00> : tensor<f32>
    %121 = stablehlo.reduce(%120 init: %cst_18) applies stablehlo.add across dimensions = [2] : (tensor<4x8x16xf32>, tensor<f32>) -> tensor<4x8xf32>
    %122 = stablehlo.broadcast_in_dim %121, dims = [0, 1] : (tensor<4x8xf32>) -> tensor<4x8x1xf32>
    %cst_19 = stablehlo.constant dense<1.600000e+01> : tensor<f32>
    %123 = stablehlo.broadcast_in_dim %cst_19, dims = [] : (tensor<f32>) -> tensor<4x8x1xf32>
    %124 = stablehlo.divide %122, %123 : tensor<4x8x1xf32>
    %cst_20 = stablehlo.constant dense<9.99999997E-7> : tensor<f32>
    %125 = stablehlo.broadcast_in_dim %cst_20, dims = [] : (tensor<f32>) -> tensor<4x8x1xf32>
    %126 = stablehlo.add %124, %125 : tensor<4x8x1xf32>
    %127 = stablehlo.rsqrt %126 : tensor<4x8x1xf32>
    %128 = stablehlo.divide %127, %126 : tensor<4x8x1xf32>
    %cst_21 = stablehlo.constant dense<-5.000000e-01> : tensor<f32>
    %129 = stablehlo.broadcast_in_dim %cst_21, dims = [] : (tensor<f32>) -> tensor<4x8x1xf32>
    %130 = stablehlo.multiply %129, %128 : tensor<4x8x1xf32>
    %131 = stablehlo.broadcast_in_dim %127, dims = [0, 1, 2] : (tensor<4x8x1xf32>) -> tensor<4x8x16xf32>
    %132 = stablehlo.multiply %119, %131 : tensor<4x8x16xf32>
    %133 = stablehlo.broadcast_in_dim %arg6, dims = [2] : (tensor<16xf32>) -> tensor<1x1x16xf32>
    %134 = stablehlo.broadcast_in_dim %133, dims = [0, 1, 2] : (tensor<1x1x16xf32>) -> tensor<4x8x16xf32>
    %135 = stablehlo.multiply %132, %134 : tensor<4x8x16xf32>
    %136 = stablehlo.dot_general %135, %arg7, contracting_dims = [2] x [0], precision = [DEFAULT, DEFAULT] : (tensor<4x8x16xf32>, tensor<16x32xf32>) -> tensor<4x8x32xf32>
    %137:3 = call @silu(%136) : (tensor<4x8x32xf32>) -> (tensor<4x8x32xf32>, tensor<4x8x32xf32>, tensor<4x8x32xf32>)
    %138 = stablehlo.dot_general %135, %arg8, contracting_dims = [2] x [0], precision = [DEFAULT, DEFAULT] : (tensor<4x8x16xf32>, tensor<16x32xf32>) -> tensor<4x8x32xf32>
    %139 = stablehlo.multiply %137#0, %138 : tensor<4x8x32xf32>
    %140 = stablehlo.dot_general %139, %arg9, contracting_dims = [2] x [0], precision = [DEFAULT, DEFAULT] : (tensor<4x8x32xf32>, tensor<32x16xf32>) -> tensor<4x8x16xf32>
    %141 = stablehlo.add %119, %140 : tensor<4x8x16xf32>
    %cst_22 = stablehlo.constant dense<2.000000e+00> : tensor<f32>
    %142 = stablehlo.broadcast_in_dim %cst_22, dims = [] : (tensor<f32>) -> tensor<4x8x16xf32>
    %143 = stablehlo.multiply %142, %141 : tensor<4x8x16xf32>
    %cst_23 = stablehlo.constant dense<1.000000e+00> : tensor<f32>
    %cst_24 = stablehlo.constant dense<5.120000e+02> : tensor<f32>
    %144 = stablehlo.divide %cst_23, %cst_24 : tensor<f32>
    %145 = stablehlo.broadcast_in_dim %144, dims = [] : (tensor<f32>) -> tensor<4x8x16xf32>
    %146 = stablehlo.multiply %145, %143 : tensor<4x8x16xf32>
    %147 = stablehlo.dot_general %146, %139, contracting_dims = [0, 1] x [0, 1], precision = [DEFAULT, DEFAULT] : (tensor<4x8x16xf32>, tensor<4x8x32xf32>) -> tensor<16x32xf32>
    %148 = stablehlo.transpose %147, dims = [1, 0] : (tensor<16x32xf32>) -> tensor<32x16xf32>
    %149 = stablehlo.dot_general %146, %arg9, contracting_dims = [2] x [1], precision = [DEFAULT, DEFAULT] : (tensor<4x8x16xf32>, tensor<32x16xf32>) -> tensor<4x8x32xf32>
    %150 = stablehlo.multiply %137#0, %149 : tensor<4x8x32xf32>
    %151 = stablehlo.multiply %149, %138 : tensor<4x8x32xf32>
    %152 = stablehlo.dot_general %150, %135, contracting_dims = [0, 1] x [0, 1], precision = [DEFAULT, DEFAULT] : (tensor<4x8x32xf32>, tensor<4x8x16xf32>) -> tensor<32x16xf32>
    %153 = stablehlo.transpose %152, dims = [1, 0] : (tensor<32x16xf32>) -> tensor<16x32xf32>
    %154 = stablehlo.dot_general %150, %arg8, contracting_dims = [2] x [1], precision = [DEFAULT, DEFAULT] : (tensor<4x8x32xf32>, tensor<16x32xf32>) -> tensor<4x8x16xf32>
    %155 = call @silu_0(%137#1, %137#2, %136, %151) : (tensor<4x8x32xf32>, tensor<4x8x32xf32>, tensor<4x8x32xf32>, tensor<4x8x32xf32>) -> tensor<4x8x32xf32>
    %156 = stablehlo.dot_general %155, %135, contracting_dims = [0, 1] x [0, 1], precision = [DEFAULT, DEFAULT] : (tensor<4x8x32xf32>, tensor<4x8x16xf32>) -> tensor<32x16xf32>
    %157 = stablehlo.transpose %156, dims = [1, 0] : (tensor<32x16xf32>) -> tensor<16x32xf32>
    %158 = stablehlo.dot_general %155, %arg7, contracting_dims = [2] x [1], precision = [DEFAULT, DEFAULT] : (tensor<4x8x32xf32>, tensor<16x32xf32>) -> tensor<4x8x16xf32>
    %159 = stablehlo.add %154, %158 : tensor<4x8x16xf32>
    %160 = stablehlo.multiply %132, %159 : tensor<4x8x16xf32>
    %cst_25 = stablehlo.constant dense<0.000000e+00> : tensor<f32>
    %161 = stablehlo.reduce(%160 init: %cst_25) applies stablehlo.add across dimensions = [0, 1] : (tensor<4x8x16xf32>, tensor<f32>) -> tensor<16xf32>
    %162 = stablehlo.reshape %161 : (tensor<16xf32>) -> tensor<1x1x16xf32>
    %163 = stablehlo.broadcast_in_dim %133, dims = [0, 1, 2] : (tensor<1x1x16xf32>) -> tensor<4x8x16xf32>
    %164 = stablehlo.multiply %159, %163 : tensor<4x8x16xf32>
    %cst_26 = stablehlo.constant dense<0.000000e+00> : tensor<f32>
    %165 = stablehlo.reduce(%162 init: %cst_26) applies stablehlo.add across dimensions = [0, 1] : (tensor<1x1x16xf32>, tensor<f32>) -> tensor<16xf32>
    %166 = stablehlo.multiply %119, %164 : tensor<4x8x16xf32>
    %cst_27 = stablehlo.constant dense<0.000000e+00> : tensor<f32>
    %167 = stablehlo.reduce(%166 init: %cst_27) applies stablehlo.add across dimensions = [2] : (tensor<4x8x16xf32>, tensor<f32>) -> tensor<4x8xf32>
    %168 = stablehlo.reshape %167 : (tensor<4x8xf32>) -> tensor<4x8x1xf32>
    %169 = stablehlo.broadcast_in_dim %127, dims = [0, 1, 2] : (tensor<4x8x1xf32>) -> tensor<4x8x16xf32>
    %170 = stablehlo.multiply %164, %169 : tensor<4x8x16xf32>
    %171 = stablehlo.add %146, %170 : tensor<4x8x16xf32>
    %172 = stablehlo.multiply %168, %130 : tensor<4x8x1xf32>
    %cst_28 = stablehlo.constant dense<1.600000e+01> : tensor<f32>
    %173 = stablehlo.broadcast_in_dim %cst_28, dims = [] : (tensor<f32>) -> tensor<4x8x1xf32>
    %174 = stablehlo.divide %172, %173 : tensor<4x8x1xf32>
    %cst_29 = stablehlo.constant dense<0.000000e+00> : tensor<f32>
    %175 = stablehlo.reduce(%174 init: %cst_29) applies stablehlo.add across dimensions = [2] : (tensor<4x8x1xf32>, tensor<f32>) -> tensor<4x8xf32>
    %176 = stablehlo.broadcast_in_dim %175, dims = [0, 1] : (tensor<4x8xf32>) -> tensor<4x8x16xf32>
    %177 = stablehlo.multiply %119, %176 : tensor<4x8x16xf32>
    %178 = stablehlo.add %171, %177 : tensor<4x8x16xf32>
    %179 = stablehlo.multiply %176, %119 : tensor<4x8x16xf32>
    %180 = stablehlo.add %178, %179 : tensor<4x8x16xf32>
    %181 = stablehlo.dot_general %180, %117, contracting_dims = [0, 1] x [0, 1], precision = [DEFAULT, DEFAULT] : (tensor<4x8x16xf32>, tensor<4x8x4x4xf32>) -> tensor<16x4x4xf32>
    %182 = stablehlo.transpose %181, dims = [1, 2, 0] : (tensor<16x4x4xf32>) -> tensor<4x4x16xf32>
    %183 = stablehlo.dot_general %180, %arg5, contracting_dims = [2] x [2], precision = [DEFAULT, DEFAULT] : (tensor<4x8x16xf32>, tensor<4x4x16xf32>) -> tensor<4x8x4x4xf32>
    %184 = stablehlo.transpose %183, dims = [0, 2, 3, 1] : (tensor<4x8x4x4xf32>) -> tensor<4x4x4x8xf32>
    %185 = stablehlo.dot_general %184, %93, batching_dims = [0, 1] x [0, 2], contracting_dims = [2] x [3], precision = [DEFAULT, DEFAULT] : (tensor<4x4x4x8xf32>, tensor<4x8x4x4xf32>) -> tensor<4x4x8x8xf32>
    %186 = stablehlo.dot_general %184, %112, batching_dims = [0, 1] x [0, 1], contracting_dims = [3] x [2], precision = [DEFAULT, DEFAULT] : (tensor<4x4x4x8xf32>, tensor<4x4x8x8xf32>) -> tensor<4x4x4x8xf32>
    %187 = stablehlo.transpose %186, dims = [0, 3, 1, 2] : (tensor<4x4x4x8xf32>) -> tensor<4x8x4x4xf32>
    %188 = stablehlo.broadcast_in_dim %115, dims = [0, 1, 2, 3] : (tensor<4x4x8x1xf32>) -> tensor<4x4x8x8xf32>
    %189 = stablehlo.multiply %185, %188 : tensor<4x4x8x8xf32>
    %190 = stablehlo.multiply %189, %108 : tensor<4x4x8x8xf32>
    %cst_30 = stablehlo.constant dense<0.000000e+00> : tensor<f32>
    %191 = stablehlo.reduce(%190 init: %cst_30) applies stablehlo.add across dimensions = [3] : (tensor<4x4x8x8xf32>, tensor<f32>) -> tensor<4x4x8xf32>
    %192 = stablehlo.reshape %191 : (tensor<4x4x8xf32>) -> tensor<4x4x8x1xf32>
    %193 = stablehlo.negate %192 : tensor<4x4x8x1xf32>
    %194 = stablehlo.broadcast_in_dim %110, dims = [0, 1, 2, 3] : (tensor<4x4x8x1xf32>) -> tensor<4x4x8x8xf32>
    %195 = stablehlo.divide %185, %194 : tensor<4x4x8x8xf32>
    %cst_31 = stablehlo.constant dense<0.000000e+00> : tensor<f32>
    %196 = stablehlo.reduce(%193 init: %cst_31) applies stablehlo.add across dimensions = [3] : (tensor<4x4x8x1xf32>, tensor<f32>) -> tensor<4x4x8xf32>
    %197 = stablehlo.broadcast_in_dim %196, dims = [0, 1, 2] : (tensor<4x4x8xf32>) -> tensor<4x4x8x8xf32>
    %198 = stablehlo.add %195, %197 : tensor<4x4x8x8xf32>
    %199 = stablehlo.multiply %198, %108 : tensor<4x4x8x8xf32>
    %200 = call @_where_1(%101#1, %199) : (tensor<4x4x8x8xi1>, tensor<4x4x8x8xf32>) -> tensor<4x4x8x8xf32>
    %201 = stablehlo.broadcast_in_dim %96, dims = [] : (tensor<f32>) -> tensor<4x4x8x8xf32>
    %202 = stablehlo.divide %200, %201 : tensor<4x4x8x8xf32>
    %203 = stablehlo.dot_general %202, %50, batching_dims = [0, 1] x [0, 2], contracting_dims = [2] x [1], precision = [DEFAULT, DEFAULT] : (tensor<4x4x8x8xf32>, tensor<4x8x4x4xf32>) -> tensor<4x4x8x4xf32>
    %204 = stablehlo.transpose %203, dims = [0, 2, 1, 3] : (tensor<4x4x8x4xf32>) -> tensor<4x8x4x4xf32>
    %205 = stablehlo.dot_general %202, %91, batching_dims = [0, 1] x [0, 2], contracting_dims = [3] x [1], precision = [DEFAULT, DEFAULT] : (tensor<4x4x8x8xf32>, tensor<4x8x4x4xf32>) -> tensor<4x4x8x4xf32>
    %206 = stablehlo.transpose %205, dims = [0, 2, 1, 3] : (tensor<4x4x8x4xf32>) -> tensor<4x8x4x4xf32>
    %207 = stablehlo.reshape %187 : (tensor<4x8x4x4xf32>) -> tensor<4x8x2x2x4xf32>
    %cst_32 = stablehlo.constant dense<0.000000e+00> : tensor<f32>
    %208 = stablehlo.reduce(%207 init: %cst_32) applies stablehlo.add across dimensions = [3] : (tensor<4x8x2x2x4xf32>, tensor<f32>) -> tensor<4x8x2x4xf32>
    %209 = stablehlo.reshape %204 : (tensor<4x8x4x4xf32>) -> tensor<4x8x2x2x4xf32>
    %cst_33 = stablehlo.constant dense<0.000000e+00> : tensor<f32>
    %210 = stablehlo.reduce(%209 init: %cst_33) applies stablehlo.add across dimensions = [3] : (tensor<4x8x2x2x4xf32>, tensor<f32>) -> tensor<4x8x2x4xf32>
    %211 = stablehlo.dot_general %208, %12, contracting_dims = [0, 1] x [0, 1], precision = [DEFAULT, DEFAULT] : (tensor<4x8x2x4xf32>, tensor<4x8x16xf32>) -> tensor<2x4x16xf32>
    %212 = stablehlo.transpose %211, dims = [2, 0, 1] : (tensor<2x4x16xf32>) -> tensor<16x2x4xf32>
    %213 = stablehlo.dot_general %208, %arg4, contracting_dims = [2, 3] x [1, 2], precision = [DEFAULT, DEFAULT] : (tensor<4x8x2x4xf32>, tensor<16x2x4xf32>) -> tensor<4x8x16xf32>
    %214 = stablehlo.reshape %210 : (tensor<4x8x2x4xf32>) -> tensor<4x8x2x2x2xf32>
    %215 = stablehlo.slice %214 [0:4, 0:8, 0:2, 0:2, 0:1] : (tensor<4x8x2x2x2xf32>) -> tensor<4x8x2x2x1xf32>
    %216 = stablehlo.reshape %215 : (tensor<4x8x2x2x1xf32>) -> tensor<4x8x2x2xf32>
    %217 = stablehlo.slice %214 [0:4, 0:8, 0:2, 0:2, 1:2] : (tensor<4x8x2x2x2xf32>) -> tensor<4x8x2x2x1xf32>
    %218 = stablehlo.reshape %217 : (tensor<4x8x2x2x1xf32>) -> tensor<4x8x2x2xf32>
    %219 = stablehlo.broadcast_in_dim %72, dims = [0, 1, 2, 3] : (tensor<1x8x1x2xf32>) -> tensor<4x8x2x2xf32>
    %220 = stablehlo.multiply %218, %219 : tensor<4x8x2x2xf32>
    %221 = stablehlo.broadcast_in_dim %70, dims = [0, 1, 2, 3] : (tensor<1x8x1x2xf32>) -> tensor<4x8x2x2xf32>
    %222 = stablehlo.multiply %218, %221 : tensor<4x8x2x2xf32>
    %223 = stablehlo.negate %216 : tensor<4x8x2x2xf32>
    %224 = stablehlo.broadcast_in_dim %70, dims = [0, 1, 2, 3] : (tensor<1x8x1x2xf32>) -> tensor<4x8x2x2xf32>
    %225 = stablehlo.multiply %223, %224 : tensor<4x8x2x2xf32>
    %226 = stablehlo.add %220, %225 : tensor<4x8x2x2xf32>
    %227 = stablehlo.broadcast_in_dim %72, dims = [0, 1, 2, 3] : (tensor<1x8x1x2xf32>) -> tensor<4x8x2x2xf32>
    %228 = stablehlo.multiply %216, %227 : tensor<4x8x2x2xf32>
    %229 = stablehlo.add %222, %228 : tensor<4x8x2x2xf32>
    %cst_34 = stablehlo.constant dense<0.000000e+00> : tensor<f32>
    %230 = stablehlo.pad %226, %cst_34, low = [0, 0, 0, 1], high = [0, 0, 0, 0], interior = [0, 0, 0, 1] : (tensor<4x8x2x2xf32>, tensor<f32>) -> tensor<4x8x2x4xf32>
    %cst_35 = stablehlo.constant dense<0.000000e+00> : tensor<f32>
    %231 = stablehlo.pad %229, %cst_35, low = [0, 0, 0, 0], high = [0, 0, 0, 1], interior = [0, 0, 0, 1] : (tensor<4x8x2x2xf32>, tensor<f32>) -> tensor<4x8x2x4xf32>
    %232 = stablehlo.add %230, %231 : tensor<4x8x2x4xf32>
    %233 = stablehlo.dot_general %232, %12, contracting_dims = [0, 1] x [0, 1], precision = [DEFAULT, DEFAULT] : (tensor<4x8x2x4xf32>, tensor<4x8x16xf32>) -> tensor<2x4x16xf32>
    %234 = stablehlo.transpose %233, dims = [2, 0, 1] : (tensor<2x4x16xf32>) -> tensor<16x2x4xf32>
    %235 = stablehlo.dot_general %232, %arg3, contracting_dims = [2, 3] x [1, 2], precision = [DEFAULT, DEFAULT] : (tensor<4x8x2x4xf32>, tensor<16x2x4xf32>) -> tensor<4x8x16xf32>
    %236 = stablehlo.add %213, %235 : tensor<4x8x16xf32>
    %237 = stablehlo.reshape %206 : (tensor<4x8x4x4xf32>) -> tensor<4x8x4x2x2xf32>
    %238 = stablehlo.slice %237 [0:4, 0:8, 0:4, 0:2, 0:1] : (tensor<4x8x4x2x2xf32>) -> tensor<4x8x4x2x1xf32>
    %239 = stablehlo.reshape %238 : (tensor<4x8x4x2x1xf32>) -> tensor<4x8x4x2xf32>
    %240 = stablehlo.slice %237 [0:4, 0:8, 0:4, 0:2, 1:2] : (tensor<4x8x4x2x2xf32>) -> tensor<4x8x4x2x1xf32>
    %241 = stablehlo.reshape %240 : (tensor<4x8x4x2x1xf32>) -> tensor<4x8x4x2xf32>
    %242 = stablehlo.broadcast_in_dim %34, dims = [0, 1, 2, 3] : (tensor<1x8x1x2xf32>) -> tensor<4x8x4x2xf32>
    %243 = stablehlo.multiply %241, %242 : tensor<4x8x4x2xf32>
    %244 = stablehlo.broadcast_in_dim %32, dims = [0, 1, 2, 3] : (tensor<1x8x1x2xf32>) -> tensor<4x8x4x2xf32>
    %245 = stablehlo.multiply %241, %244 : tensor<4x8x4x2xf32>
    %246 = stablehlo.negate %239 : tensor<4x8x4x2xf32>
    %247 = stablehlo.broadcast_in_dim %32, dims = [0, 1, 2, 3] : (tensor<1x8x1x2xf32>) -> tensor<4x8x4x2xf32>
    %248 = stablehlo.multiply %246, %247 : tensor<4x8x4x2xf32>
    %249 = stablehlo.add %243, %248 : tensor<4x8x4x2xf32>
    %250 = stablehlo.broadcast_in_dim %34, dims = [0, 1, 2, 3] : (tensor<1x8x1x2xf32>) -> tensor<4x8x4x2xf32>
    %251 = stablehlo.multiply %239, %250 : tensor<4x8x4x2xf32>
    %252 = stablehlo.add %245, %251 : tensor<4x8x4x2xf32>
    %cst_36 = stablehlo.constant dense<0.000000e+00> : tensor<f32>
    %253 = stablehlo.pad %249, %cst_36, low = [0, 0, 0, 1], high = [0, 0, 0, 0], interior = [0, 0, 0, 1] : (tensor<4x8x4x2xf32>, tensor<f32>) -> tensor<4x8x4x4xf32>
    %cst_37 = stablehlo.constant dense<0.000000e+00> : tensor<f32>
    %254 = stablehlo.pad %252, %cst_37, low = [0, 0, 0, 0], high = [0, 0, 0, 1], interior = [0, 0, 0, 1] : (tensor<4x8x4x2xf32>, tensor<f32>) -> tensor<4x8x4x4xf32>
    %255 = stablehlo.add %253, %254 : tensor<4x8x4x4xf32>
    %256 = stablehlo.dot_general %255, %12, contracting_dims = [0, 1] x [0, 1], precision = [DEFAULT, DEFAULT] : (tensor<4x8x4x4xf32>, tensor<4x8x16xf32>) -> tensor<4x4x16xf32>
    %257 = stablehlo.transpose %256, dims = [2, 0, 1] : (tensor<4x4x16xf32>) -> tensor<16x4x4xf32>
    %258 = stablehlo.dot_general %255, %arg2, contracting_dims = [2, 3] x [1, 2], precision = [DEFAULT, DEFAULT] : (tensor<4x8x4x4xf32>, tensor<16x4x4xf32>) -> tensor<4x8x16xf32>
    %259 = stablehlo.add %236, %258 : tensor<4x8x16xf32>
    %260 = stablehlo.multiply %9, %259 : tensor<4x8x16xf32>
    %cst_38 = stablehlo.constant dense<0.000000e+00> : tensor<f32>
    %261 = stablehlo.reduce(%260 init: %cst_38) applies stablehlo.add across dimensions = [0, 1] : (tensor<4x8x16xf32>, tensor<f32>) -> tensor<16xf32>
    %262 = stablehlo.reshape %261 : (tensor<16xf32>) -> tensor<1x1x16xf32>
    %cst_39 = stablehlo.constant dense<0.000000e+00> : tensor<f32>
    %263 = stablehlo.reduce(%262 init: %cst_39) applies stablehlo.add across dimensions = [0, 1] : (tensor<1x1x16xf32>, tensor<f32>) -> tensor<16xf32>
    return %263, %257, %234, %212, %182, %165, %157, %153, %148 : tensor<16xf32>, tensor<16x4x4xf32>, tensor<16x2x4xf32>, tensor<16x2x4xf32>, tensor<4x4x16xf32>, tensor<16xf32>, tensor<16x32xf32>, tensor<16x32xf32>, tensor<32x16xf32>
  }
  func.func private @tril(%arg0: tensor<8x8xi1>) -> tensor<8x8xi1> {
    %0 = stablehlo.iota dim = 0 : tensor<8x8xi32>
    %c = stablehlo.constant dense<0> : tensor<i32>
    %1 = stablehlo.broadcast_in_dim %c, dims = [] : (tensor<i32>) -> tensor<8x8xi32>
    %2 = stablehlo.add %0, %1 : tensor<8x8xi32>
    %3 = stablehlo.iota dim = 1 : tensor<8x8xi32>
    %4 = stablehlo.compare GE, %2, %3, SIGNED : (tensor<8x8xi32>, tensor<8x8xi32>) -> tensor<8x8xi1>
    %c_0 = stablehlo.constant dense<false> : tensor<i1>
    %5 = stablehlo.broadcast_in_dim %c_0, dims = [] : (tensor<i1>) -> tensor<8x8xi1>
    %6 = stablehlo.select %4, %arg0, %5 : tensor<8x8xi1>, tensor<8x8xi1>
    return %6 : tensor<8x8xi1>
  }
  func.func private @_where(%arg0: tensor<8x8xi1>, %arg1: tensor<4x4x8x8xf32>, %arg2: tensor<f32>) -> (tensor<4x4x8x8xf32>, tensor<4x4x8x8xi1>) {
    %0 = stablehlo.convert %arg2 : tensor<f32>
    %1 = stablehlo.broadcast_in_dim %arg0, dims = [2, 3] : (tensor<8x8xi1>) -> tensor<4x4x8x8xi1>
    %2 = stablehlo.broadcast_in_dim %0, dims = [] : (tensor<f32>) -> tensor<4x4x8x8xf32>
    %3 = stablehlo.select %1, %arg1, %2 : tensor<4x4x8x8xi1>, tensor<4x4x8x8xf32>
    return %3, %1 : tensor<4x4x8x8xf32>, tensor<4x4x8x8xi1>
  }
  func.func private @silu(%arg0: tensor<4x8x32xf32>) -> (tensor<4x8x32xf32>, tensor<4x8x32xf32>, tensor<4x8x32xf32>) {
    %0 = stablehlo.negate %arg0 : tensor<4x8x32xf32>
    %1 = stablehlo.exponential %0 : tensor<4x8x32xf32>
    %cst = stablehlo.constant dense<1.000000e+00> : tensor<f32>
    %2 = stablehlo.broadcast_in_dim %cst, dims = [] : (tensor<f32>) -> tensor<4x8x32xf32>
    %3 = stablehlo.add %2, %1 : tensor<4x8x32xf32>
    %cst_0 = stablehlo.constant dense<1.000000e+00> : tensor<f32>
    %4 = stablehlo.broadcast_in_dim %cst_0, dims = [] : (tensor<f32>) -> tensor<4x8x32xf32>
    %5 = stablehlo.divide %4, %3 : tensor<4x8x32xf32>
    %cst_1 = stablehlo.constant dense<1.000000e+00> : tensor<f32>
    %6 = stablehlo.broadcast_in_dim %cst_1, dims = [] : (tensor<f32>) -> tensor<4x8x32xf32>
    %7 = stablehlo.subtract %6, %5 : tensor<4x8x32xf32>
    %8 = stablehlo.multiply %5, %7 : tensor<4x8x32xf32>
    %9 = stablehlo.multiply %arg0, %5 : tensor<4x8x32xf32>
    return %9, %8, %5 : tensor<4x8x32xf32>, tensor<4x8x32xf32>, tensor<4x8x32xf32>
  }
  func.func private @silu_0(%arg0: tensor<4x8x32xf32>, %arg1: tensor<4x8x32xf32>, %arg2: tensor<4x8x32xf32>, %arg3: tensor<4x8x32xf32>) -> tensor<4x8x32xf32> {
    %0 = stablehlo.multiply %arg2, %arg3 : tensor<4x8x32xf32>
    %1 = stablehlo.multiply %arg3, %arg1 : tensor<4x8x32xf32>
    %2 = stablehlo.multiply %0, %arg0 : tensor<4x8x32xf32>
    %3 = stablehlo.add %1, %2 : tensor<4x8x32xf32>
    return %3 : tensor<4x8x32xf32>
  }
  func.func private @_where_1(%arg0: tensor<4x4x8x8xi1>, %arg1: tensor<4x4x8x8xf32>) -> tensor<4x4x8x8xf32> {
    %cst = stablehlo.constant dense<0.000000e+00> : tensor<f32>
    %0 = stablehlo.broadcast_in_dim %cst, dims = [] : (tensor<f32>) -> tensor<4x4x8x8xf32>
    %1 = stablehlo.select %arg0, %arg1, %0 : tensor<4x4x8x8xi1>, tensor<4x4x8x8xf32>
    return %1 : tensor<4x4x8x8xf32>
  }
}
