public enum ISCSIFabricModule {}
