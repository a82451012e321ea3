"""GAN losses, one module per family of objectives.

* :mod:`.bce` — binary cross-entropy on logits (DCGAN), with label flipping, label smoothing
  and instance noise.
* :mod:`.wgan_gp` — Wasserstein loss with the per-sample gradient penalty (SpecGAN).
* :mod:`.stylegan2` — non-saturating logistic loss with lazy R1 / path-length regularisation
  and adaptive augmentation (StyleGAN2-ADA).

Every loss object has ``n_critic``, ``d_loss(real, z, step)``, ``g_loss(z, step)``,
``state_dict()`` and ``load_state_dict(d)`` (see docs/training.md). Modules are imported on
use, so importing this package pulls in nothing heavy.
"""
