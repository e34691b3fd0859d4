"""Training for the irmas model: LightningModule (system), DataModule, configs, export and Hub push."""
