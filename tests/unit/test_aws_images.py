"""The table of AWS's serving images (fleet/aws_images.json): one case per family."""

import pytest

from sagemaker_emu.fleet.images import ImageError, ImageMap, aws_families, aws_family, resolve

CASES = [
    ("763104351884.dkr.ecr.us-east-1.amazonaws.com/huggingface-pytorch-tgi-inference:2.4.0-tgi2.3.1-gpu-py311-cu124-ubuntu22.04",
     "Hugging Face TGI"),
    ("763104351884.dkr.ecr.us-west-2.amazonaws.com/huggingface-neuronx-tgi-inference:0.0.25", "Hugging Face TGI (Neuron)"),
    ("763104351884.dkr.ecr.us-west-2.amazonaws.com/djl-inference:0.33.0-lmi15.0.0-cu128",
     "LMI (DJL Serving: vLLM, TensorRT-LLM, Neuron)"),
    ("763104351884.dkr.ecr.us-east-1.amazonaws.com/vllm:0.10.2-gpu-py312", "vLLM"),
    ("763104351884.dkr.ecr.us-west-2.amazonaws.com/sglang:0.5.10-gpu-py312-cu130-ubuntu22.04-sagemaker", "SGLang"),
    ("public.ecr.aws/deep-learning-containers/sglang:server-sagemaker-cuda", "SGLang"),
    ("763104351884.dkr.ecr.eu-west-1.amazonaws.com/huggingface-pytorch-inference:2.1.0-transformers4.37.0-cpu-py310-ubuntu22.04",
     "Hugging Face inference"),
    ("763104351884.dkr.ecr.us-east-1.amazonaws.com/pytorch-inference:2.1-cpu-py310", "PyTorch inference"),
    ("763104351884.dkr.ecr.us-east-1.amazonaws.com/tensorflow-inference:2.13-cpu", "TensorFlow inference"),
    ("683313688378.dkr.ecr.us-east-1.amazonaws.com/sagemaker-scikit-learn:1.2-1-cpu-py3", "scikit-learn"),
    ("683313688378.dkr.ecr.us-east-1.amazonaws.com/sagemaker-xgboost:1.7-1", "XGBoost"),
    ("763104351884.dkr.ecr.us-east-1.amazonaws.com/mxnet-inference:1.9.0-cpu-py38", "MXNet inference"),
]


@pytest.mark.parametrize("image,family", CASES)
def test_each_family_is_recognised(image, family):
    assert aws_family(image).family == family


def test_every_family_has_a_case():
    assert {f.family for f in aws_families()} == {family for _, family in CASES}


@pytest.mark.parametrize("image", [
    "pytorch-inference:2.1",  # not an ECR URI
    "123456789012.dkr.ecr.us-east-1.amazonaws.com/my-own-image:1",
    "763104351884.dkr.ecr.us-east-1.amazonaws.com/pytorch-training:2.1-cpu-py310",
    "public.ecr.aws/my-team/sglang:1",  # the Public Gallery, but not AWS's Deep Learning Containers
])
def test_other_images_are_not_aws_serving_images(image):
    assert aws_family(image) is None


def test_llm_servers_run_llm_sim_speaking_their_api(tmp_path):
    tgi, lmi = CASES[0][0], CASES[2][0]
    unpacked = []
    launch = resolve({"Image": tgi}, lambda: unpacked.append(1) or tmp_path, ImageMap())
    assert (launch.builtin, launch.env) == ("llm-sim", {"LLM_SIM_API": "tgi"}) and unpacked == []
    assert resolve({"Image": lmi}, lambda: tmp_path, ImageMap()).env == {"LLM_SIM_API": "lmi"}


def test_framework_image_without_inference_py_says_what_to_add(tmp_path):
    sklearn = next(image for image, family in CASES if family == "scikit-learn")
    with pytest.raises(ImageError, match=r"runs scikit-learn images .* through the model's inference.py.*\(scikit-learn\)"):
        resolve({"Image": sklearn}, lambda: tmp_path, ImageMap())
    (tmp_path / "code").mkdir()
    (tmp_path / "code" / "inference.py").write_text("def model_fn(d): pass\n")
    assert resolve({"Image": sklearn}, lambda: tmp_path, ImageMap()).toolkit


def test_the_image_map_still_overrides(tmp_path):
    mapped = ImageMap({CASES[0][0]: {"url": "http://127.0.0.1:9/"}})
    assert resolve({"Image": CASES[0][0]}, lambda: tmp_path, mapped).url == "http://127.0.0.1:9"
